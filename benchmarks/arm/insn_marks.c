/*
 * A QEMU TCG plugin that counts guest instructions and prints the running total each
 * time the guest writes to file descriptor MARK_FD (a descriptor that is never open, so
 * the write fails harmlessly). A script brackets the code it wants measured with such
 * writes, and the differences between consecutive marks are the instructions between
 * them, whatever the process did before (imports, model loading) and after.
 *
 * Build: cc -shared -fPIC -O2 -I QEMU_SRC/include/qemu $(pkg-config --cflags glib-2.0)
 *        -o libinsn_marks.so insn_marks.c
 * Use:   qemu-aarch64 -cpu cortex-a76 -plugin ./libinsn_marks.so,out=counts.txt prog ...
 * Each mark appends a line "mark <instructions so far>" to out (stderr by default).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MARK_FD 1021
#define AARCH64_SYS_WRITE 64

static struct qemu_plugin_scoreboard *scores;
static qemu_plugin_u64 executed;
static FILE *out;

/*
 * Each translation block adds its instruction count when it starts (inline, no callback).
 * A block left early would be overcounted; counting every instruction instead gave the
 * same totals to the instruction on the bundled models, at several times the run time.
 */
static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(
        tb, QEMU_PLUGIN_INLINE_ADD_U64, executed, qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    if (num == AARCH64_SYS_WRITE && a1 == MARK_FD) {
        fprintf(out, "mark %" PRIu64 "\n", qemu_plugin_u64_sum(executed));
        fflush(out);
    }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *data)
{
    fprintf(out, "total %" PRIu64 "\n", qemu_plugin_u64_sum(executed));
    if (out != stderr) {
        fclose(out);
    }
    qemu_plugin_scoreboard_free(scores);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    out = stderr;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            out = fopen(argv[i] + 4, "w");
            if (!out) {
                fprintf(stderr, "insn_marks: cannot open %s\n", argv[i] + 4);
                return -1;
            }
        } else {
            fprintf(stderr, "insn_marks: unknown option %s\n", argv[i]);
            return -1;
        }
    }
    scores = qemu_plugin_scoreboard_new(sizeof(uint64_t));
    executed = qemu_plugin_scoreboard_u64(scores);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
