"""The runtime on aarch64 Linux, here, under QEMU user emulation.

    sudo python -m benchmarks.arm_emulation            # everything, caches reused
    sudo python -m benchmarks.arm_emulation --skip-tests --cpus cortex-a76

With no phone or board attached, an emulated arm64 Debian is the closest target this
machine has. This command

1. builds (once) an arm64 Debian root file system with ``debootstrap`` and a QEMU with
   TCG plugins from Debian's own QEMU source package (Debian's binary packages have no
   plugin support), and compiles benchmarks/arm/insn_marks.c against it; both are cached
   outside the work tree (``--cache``, default ~/.cache/tiny-denoise-arm);
2. installs this checkout's ``[runtime]`` extra in a venv inside it, pinned to the
   versions installed here, so both sides run the same numpy and LiteRT releases;
3. runs the TensorFlow-free test tier there (``pytest -m "not train"``, less the two tests
   marked ``long`` that stream minutes of audio to watch memory);
4. denoises fixed signals with every bundled model on x86 and on aarch64 and reports the
   largest difference (float models must agree within 1e-6, int8 within 1e-4);
5. counts guest instructions per frame, by stage (benchmarks.frame_stages), for each
   bundled model on Cortex-A53 and Cortex-A76 CPU models, and writes a markdown and a JSON
   table under benchmarks/results/.

Facts this relies on, found when it was first tried: QEMU's default ``-cpu max`` computes
int8 kernels wrongly (its SME emulation), so the CPU model is always named; LiteRT's
cpuinfo crashes on an x86 /proc/cpuinfo, so an aarch64 one is bound over it; the host's CA
bundle is copied in, because pip inside the chroot must trust what pip here trusts.
Instruction counts are deterministic: they say how much work the code asks of the core,
not how long it takes (no caches, no clock, no memory system).

Needs root (debootstrap, chroot, mounts) and Debian's package registry; every step that
cannot run says so in one line and exits non-zero.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from runtime.errors import DenoiseError

from .frame_stages import STAGES, with_outside
from .frame_stages import markdown as stages_markdown

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path(os.environ.get("TINY_DENOISE_ARM_CACHE", Path.home() / ".cache" / "tiny-denoise-arm"))
RESULTS = PROJECT / "benchmarks" / "results"
SUITE = "bookworm"  # the host's Debian release: the chroot's Python is the host's 3.11
QEMU_SOURCE_SUITE = "trixie"  # QEMU 10: plugins, Cortex-A53/A76 models, no SME int8 bug with a named CPU
MESON = ("meson==1.5.0", "pycotap==1.3.1")  # what QEMU 10's configure asks for
HOST_TOOLS = {"debootstrap": "debootstrap", "qemu-aarch64-static": "qemu-user-static",
              "update-binfmts": "binfmt-support", "chroot": "coreutils", "gcc": "build-essential",
              "ninja": "ninja-build", "pkg-config": "pkg-config", "flex": "flex", "bison": "bison",
              "dpkg-source": "dpkg-dev"}
BUILD_LIBS = ("libglib2.0-dev",)
ROOTFS_PACKAGES = "python3,python3-venv,python3-pip,ca-certificates,libsndfile1"
RUNTIME_REQUIREMENTS = ("numpy", "soundfile", "soxr", "ai-edge-litert", "tqdm")
#: The [fast] extra: pinned in the guest too when installed here, so both frame paths are counted.
FAST_REQUIREMENTS = ("numba", "llvmlite")
GUEST_ENV = {"PYTHONPATH": "/opt/tiny-denoise", "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
             "PATH": "/opt/venv/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
#: Guest address space QEMU reserves for counted runs (16 GiB: address space, not memory).
GUEST_ADDRESS_SPACE = "0x400000000"
#: Tolerances of aarch64 against x86 output, by weight type.
TOLERANCE = {"float32": 1e-6, "int8": 1e-4}

# An aarch64 /proc/cpuinfo per CPU model (ARM's part numbers; the A53 has no dot product).
CPUINFO = {
    "cortex-a53": ("0xd03", "0x0", "4", "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
    "cortex-a76": ("0xd0b", "0x4", "1", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
                                         "asimdhp cpuid asimdrdm lrcpc dcpop asimddp"),
}


class EmulationError(DenoiseError):
    """A step of the emulated run that cannot go on here."""


def run(cmd, *, cwd=None, env=None, quiet=True, what=None, timeout=None) -> str:
    """Run a command; on failure raise EmulationError naming the step and the last output line."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=quiet, timeout=timeout)
    except FileNotFoundError:
        raise EmulationError(f"{what or cmd[0]}: {cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise EmulationError(f"{what or cmd[0]}: no result after {timeout} s") from None
    if proc.returncode != 0:
        tail = ((proc.stderr or "") + (proc.stdout or "")).strip().splitlines() if quiet else []
        last = tail[-1] if tail else f"exit code {proc.returncode}"
        raise EmulationError(f"{what or ' '.join(map(str, cmd[:3]))} failed: {last}")
    return proc.stdout or ""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- host preparation

def debian_mirror() -> str:
    """The Debian archive the host's apt uses (deb822 or one-line sources)."""
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M):
            if "security" not in uri and "debian" in uri:
                return uri.rstrip("/")
    raise EmulationError("no Debian archive in /etc/apt/sources.list*: debootstrap needs one")


def check_host() -> None:
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise EmulationError(f"this emulates aarch64 on x86_64 Linux; this is {platform.system()} "
                             f"{platform.machine()} (on an ARM board run the tests natively)")
    if os.geteuid() != 0:
        raise EmulationError("needs root (debootstrap, chroot and bind mounts): run it with sudo")


def install_host_tools() -> None:
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if not Path("/usr/include/glib-2.0/glib.h").exists():
        missing += list(BUILD_LIBS)
    if not missing:
        return
    say(f"installing {' '.join(missing)} from Debian's registry ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env, what="apt-get update (Debian's registry)")
    run(["apt-get", "install", "-y", "-qq", *missing], env=env, what=f"apt-get install {' '.join(missing)}")


def enable_binfmt() -> None:
    """Let the kernel hand aarch64 executables to qemu-aarch64-static (inside the chroot too)."""
    root = Path("/proc/sys/fs/binfmt_misc")
    if not (root / "register").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(root)],
            what="mounting binfmt_misc (a container may forbid it)")
    run(["update-binfmts", "--enable", "qemu-aarch64"], what="update-binfmts --enable qemu-aarch64")
    entry = root / "qemu-aarch64"
    if not entry.exists() or "enabled" not in entry.read_text():
        raise EmulationError("binfmt_misc has no enabled qemu-aarch64 entry: aarch64 programs cannot run")


def ensure_rootfs(cache: Path) -> Path:
    """An arm64 Debian with Python, built once by debootstrap."""
    rootfs = cache / "rootfs"
    if (rootfs / ".tiny-denoise-ready").exists():
        return rootfs
    partial = cache / "rootfs.partial"
    if partial.exists():
        unmount_all(partial)
        shutil.rmtree(partial)
    cache.mkdir(parents=True, exist_ok=True)
    say(f"building an arm64 Debian {SUITE} in {rootfs} (debootstrap, about 10 minutes) ...")
    run(["debootstrap", "--arch=arm64", "--variant=minbase", f"--include={ROOTFS_PACKAGES}", SUITE,
         str(partial), debian_mirror()], what="debootstrap of the arm64 root file system")
    shutil.copy("/etc/resolv.conf", partial / "etc" / "resolv.conf")
    partial.rename(rootfs)
    (rootfs / ".tiny-denoise-ready").write_text(SUITE + "\n")
    return rootfs


def ensure_qemu(cache: Path) -> Path:
    """A qemu-aarch64 with plugin support and the insn_marks plugin, built once from Debian's
    QEMU source package. Returns the folder holding both."""
    out = cache / "qemu"
    plugin_src = PROJECT / "benchmarks" / "arm" / "insn_marks.c"
    stamp = hashlib.sha256(plugin_src.read_bytes()).hexdigest()[:16]
    if (out / "qemu-aarch64").exists() and (out / f".plugin-{stamp}").exists():
        return out
    src_root = cache / "qemu-src"
    source = next((p for p in sorted(src_root.glob("qemu-*")) if (p / "configure").exists()), None) \
        if src_root.exists() else None
    if source is None:
        source = fetch_qemu_source(src_root)
    build = source / "build"
    binary = build / "qemu-aarch64"
    if not binary.exists():
        say(f"building QEMU from {source.name} with plugins (about 10 minutes on 2 cores) ...")
        python = cache / "buildpy" / "bin" / "python"
        if not python.exists():
            run([sys.executable, "-m", "venv", str(cache / "buildpy")], what="a venv for QEMU's build")
            run([str(python), "-m", "pip", "install", "-q", *MESON], what="pip install meson for QEMU")
        build.mkdir(exist_ok=True)
        run([str(source / "configure"), f"--python={python}", "--target-list=aarch64-linux-user",
             "--enable-plugins", "--disable-docs", "--disable-tools", "--disable-werror",
             "--disable-install-blobs"], cwd=build, what="QEMU configure")
        run(["ninja", f"-j{os.cpu_count() or 2}", "qemu-aarch64"], cwd=build, what="QEMU build")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(binary, out / "qemu-aarch64")
    cflags = run(["pkg-config", "--cflags", "glib-2.0"], what="pkg-config glib-2.0").split()
    run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-I", str(source / "include" / "qemu"), *cflags,
         "-o", str(out / "libinsn_marks.so"), str(plugin_src)], what="compiling benchmarks/arm/insn_marks.c")
    for old in out.glob(".plugin-*"):
        old.unlink()
    (out / f".plugin-{stamp}").write_text("")
    return out


def fetch_qemu_source(src_root: Path) -> Path:
    """Debian's QEMU source package of QEMU_SOURCE_SUITE, with apt lists kept in the cache
    (the host's apt configuration is not touched)."""
    apt = src_root / "apt"
    (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    listing = apt / "sources.list"
    listing.write_text(f"deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                       f"{debian_mirror()} {QEMU_SOURCE_SUITE} main\n")
    opts = ["-o", f"Dir::Etc::SourceList={listing}", "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={apt / 'lists'}", "-o", f"Dir::Cache::Archives={apt / 'archives'}",
            "-o", "APT::Sandbox::User=root"]
    say(f"fetching Debian {QEMU_SOURCE_SUITE}'s QEMU source package ...")
    run(["apt-get", *opts, "update", "-qq"], what=f"apt-get update of {QEMU_SOURCE_SUITE} sources")
    run(["apt-get", *opts, "source", "--download-only", "-qq", "qemu"], cwd=src_root,
        what="apt-get source qemu")
    tarball = next(iter(sorted(src_root.glob("qemu_*.orig.tar.*"))), None)
    if tarball is None:
        raise EmulationError(f"apt-get source qemu left no orig tarball in {src_root}")
    run(["tar", "xf", str(tarball)], cwd=src_root, what=f"unpacking {tarball.name}")
    source = next((p for p in sorted(src_root.glob("qemu-*")) if (p / "configure").exists()), None)
    if source is None:
        raise EmulationError(f"{tarball.name} unpacked no qemu-*/configure")
    return source


def host_pins() -> list[str]:
    """name==version of each runtime requirement installed here, so the guest runs the same."""
    pins = []
    for name in RUNTIME_REQUIREMENTS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise EmulationError(f"{name} is not installed here: pip install -e \".[runtime]\" first") from None
    if fast_installed():
        pins += [f"{name}=={metadata.version(name)}" for name in FAST_REQUIREMENTS]
    return pins


def fast_installed() -> bool:
    """The [fast] extra (numba) is installed here, so the guest gets it and both paths are counted."""
    try:
        return all(metadata.version(name) for name in FAST_REQUIREMENTS)
    except metadata.PackageNotFoundError:
        return False


def project_files() -> list[str]:
    """The checkout's tracked files (uncommitted edits included), or the source folders."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT, capture_output=True, check=True)
        return [f for f in out.stdout.decode().split("\0") if f and (PROJECT / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        keep = ("runtime", "benchmarks", "tests", "export", "training")
        return [str(p.relative_to(PROJECT)) for d in keep for p in (PROJECT / d).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts] + ["pyproject.toml"]


def install_project(rootfs: Path, qemu: Path) -> None:
    """This checkout at /opt/tiny-denoise, its [runtime] pins and pytest in /opt/venv, and the
    plugin QEMU (an x86 program with its own libraries) at /opt/qemu-x86."""
    dest = rootfs / "opt" / "tiny-denoise"
    if dest.exists():
        shutil.rmtree(dest)
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT / rel, target)
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc" / "ssl" / "certs" / "ca-certificates.crt")
    pins = host_pins() + ["pytest"]
    stamp = rootfs / "opt" / ".tiny-denoise-pins"
    if not stamp.exists() or stamp.read_text() != "\n".join(pins):
        say(f"installing {' '.join(pins)} in the arm64 venv (a few minutes under emulation) ...")
        guest(rootfs, ["/usr/bin/python3", "-m", "venv", "/opt/venv"], what="creating the arm64 venv")
        guest(rootfs, ["/opt/venv/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins],
              what="pip install in the arm64 venv (PyPI)")
        stamp.write_text("\n".join(pins))
    # compiled once here, so every counted run loads the same .pyc files (a run that compiles
    # them allocates differently, and its counts differ by ~0.4 % from the next one's)
    guest(rootfs, ["/opt/venv/bin/python", "-m", "compileall", "-q", "/opt/tiny-denoise"],
          what="compiling the project in the arm64 venv")
    stage = rootfs / "opt" / "qemu-x86"
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "lib").mkdir(parents=True)
    shutil.copy(qemu / "qemu-aarch64", stage / "qemu-aarch64")
    shutil.copy(qemu / "libinsn_marks.so", stage / "libinsn_marks.so")
    for line in run(["ldd", str(qemu / "qemu-aarch64")], what="ldd qemu-aarch64").splitlines():
        lib = re.search(r"(/\S+)\s+\(0x", line)
        if lib:
            path = Path(lib.group(1))
            shutil.copy(path.resolve(), stage / "lib" / (path.name if "ld-linux" not in path.name else "ld.so"))


# ---------------------------------------------------------------- running inside

def unmount_all(rootfs: Path) -> None:
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(str(rootfs) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


@contextlib.contextmanager
def mounted(rootfs: Path, cpu: str):
    """/proc, /dev and /sys bound into the chroot, with the CPU model's /proc/cpuinfo."""
    part, variant, revision, features = CPUINFO[cpu]
    info = rootfs / "opt" / f"cpuinfo-{cpu}"
    info.parent.mkdir(parents=True, exist_ok=True)
    info.write_text(cpuinfo_text(part, variant, revision, features))
    unmount_all(rootfs)
    try:
        run(["mount", "-t", "proc", "proc", str(rootfs / "proc")], what="mounting /proc in the chroot")
        run(["mount", "--rbind", "/dev", str(rootfs / "dev")], what="binding /dev into the chroot")
        run(["mount", "--rbind", "/sys", str(rootfs / "sys")], what="binding /sys into the chroot")
        run(["mount", "--bind", str(info), str(rootfs / "proc" / "cpuinfo")], what="binding an aarch64 cpuinfo")
        yield
    finally:
        unmount_all(rootfs)


def cpuinfo_text(part: str, variant: str, revision: str, features: str, cores: int = 2) -> str:
    block = (f"BogoMIPS\t: 50.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
             f"CPU architecture: 8\nCPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: {revision}\n")
    return "".join(f"processor\t: {i}\n{block}\n" for i in range(cores))


def host_command(name: str) -> str:
    """The host's path of a command (the guest's PATH is not the host's)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        raise EmulationError(f"{name} is not installed")
    return path


def guest(rootfs: Path, cmd, *, cpu: str = "cortex-a76", what=None, quiet=True, timeout=None) -> str:
    """Run an aarch64 command in the chroot (through binfmt's qemu-aarch64-static)."""
    env = {**GUEST_ENV, "QEMU_CPU": cpu}
    return run([host_command("chroot"), str(rootfs), *cmd], env=env, what=what, quiet=quiet, timeout=timeout)


def counted(rootfs: Path, cpu: str, cmd, marks_file: str, what=None) -> list[int]:
    """Run an aarch64 command under the plugin QEMU; the instruction counts at its marks."""
    # -R reserves the guest's address space up front, so QEMU places every guest mapping
    # itself, the same way each run: numpy's vector loops then see the same alignment and
    # repeat their counts to the instruction (with the host's mmap picking addresses,
    # small stages differed by up to 0.4 % between runs)
    qemu = ["/opt/qemu-x86/lib/ld.so", "--library-path", "/opt/qemu-x86/lib", "/opt/qemu-x86/qemu-aarch64",
            "-cpu", cpu, "-R", GUEST_ADDRESS_SPACE, "-plugin", f"/opt/qemu-x86/libinsn_marks.so,out={marks_file}"]
    # without address-space randomisation, so allocation patterns repeat from run to run
    run([host_command("setarch"), "x86_64", "-R", host_command("chroot"), str(rootfs), *qemu, *cmd],
        env=dict(GUEST_ENV), what=what)
    return parse_marks((rootfs / marks_file.lstrip("/")).read_text())


def parse_marks(text: str) -> list[int]:
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("mark ")]


def stage_counts(marks: list[int], models: list[str], frames: int, paths=("numpy",)) -> list[dict]:
    """Per-frame instructions of each stage from benchmarks.frame_stages --marks' marks
    (two per stage, stages in STAGES order, models in order, each model's paths in order)."""
    need = 2 * len(STAGES) * len(models) * len(paths)
    if len(marks) != need:
        raise EmulationError(f"expected {need} marks from benchmarks.frame_stages, got {len(marks)}")
    rows, it = [], iter(marks)
    for model in models:
        for path in paths:
            per = {stage: (b - a) / frames for stage, (a, b) in zip(STAGES, zip(it, it))}
            rows.append({"model": model, "path": path, "instructions_per_frame": with_outside(per)})
    return rows


#: Repeat differences are relative to the stage's count or this, whichever is larger: the
#: compiled path's JIT-loaded code moves a stage by some tens of instructions between
#: processes, which is over 0.5 % of an 8k-instruction stage and nothing for the frame.
SPREAD_FLOOR = 50_000


def repeat_spread(runs: list[list[dict]]) -> dict:
    """The largest relative difference between repeated counts, overall and by stage
    (against at least SPREAD_FLOOR instructions)."""
    by_stage = {s: max(abs(a["instructions_per_frame"][s] - b["instructions_per_frame"][s])
                       / max(a["instructions_per_frame"][s], SPREAD_FLOOR)
                       for run_ in runs[1:] for a, b in zip(runs[0], run_)) for s in STAGES}
    return {"largest": max(by_stage.values()), "by_stage": by_stage}


# ---------------------------------------------------------------- parity

def bundled_models() -> list[Path]:
    from runtime.stream import BUNDLED_MODELS, MODELS_DIR

    return [MODELS_DIR / n for names in BUNDLED_MODELS.values() for n in names if (MODELS_DIR / n).is_file()]


def parity_outputs(out: Path, seconds: float = 3.0) -> None:
    """Each bundled model's stream output for a fixed signal at its rate, into one .npz."""
    from runtime.example_audio import noisy_example
    from runtime.stream import StreamDenoiser

    arrays = {}
    for path in bundled_models():
        sd = StreamDenoiser(path)
        noisy, _ = noisy_example(sd.sample_rate, seconds, seed=3)
        arrays[path.name] = np.concatenate([sd.process(noisy), sd.flush()])
    np.savez(out, **arrays)


def compare(x86: dict, arm: dict) -> list[dict]:
    rows = []
    for name, ref in x86.items():
        if name not in arm:
            raise EmulationError(f"the aarch64 run produced no output for {name}")
        kind = "int8" if "int8" in name else "float32"
        diff = float(np.max(np.abs(np.asarray(ref) - np.asarray(arm[name]))))
        rows.append({"model": name, "weights": kind, "max_abs_difference": diff,
                     "tolerance": TOLERANCE[kind], "ok": diff <= TOLERANCE[kind]})
    return rows


# ---------------------------------------------------------------- report

def markdown(parity: list[dict], counts: dict[str, list[dict]], tests: str | None, qemu_version: str) -> str:
    lines = [f"aarch64 under QEMU user emulation ({qemu_version}), Debian {SUITE} arm64, "
             f"`python -m benchmarks.arm_emulation`", ""]
    if tests:
        lines += [f"TensorFlow-free tests on aarch64: {tests}", ""]
    if parity:
        lines += ["| model | aarch64 vs x86, largest sample difference | tolerance | ok |", "|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['max_abs_difference']:.2e} | {r['tolerance']:.0e} | "
                  f"{'yes' if r['ok'] else 'NO'} |" for r in parity]
        lines.append("")
    for cpu, rows in counts.items():
        lines += [f"Instructions per frame on the {cpu} model:", "",
                  stages_markdown(rows, "instructions_per_frame", "instructions per frame"), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.arm_emulation",
                                description="Run the runtime on an emulated aarch64 Debian: its tests, its "
                                            "output against x86, and instructions per frame on Cortex-A53/A76 "
                                            "models (needs root; caches the root file system and QEMU).")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                   help=f"where the root file system and QEMU are kept (default {DEFAULT_CACHE}; "
                        f"env TINY_DENOISE_ARM_CACHE)")
    p.add_argument("--cpus", default="cortex-a53,cortex-a76", help="CPU models to count on (default both)")
    p.add_argument("--frames", type=int, default=256, help="frames per counted stage (default 256)")
    p.add_argument("--repeat", type=int, default=1,
                   help="count each CPU this many times and report the largest relative difference")
    p.add_argument("--skip-tests", action="store_true", help="do not run the test tier on aarch64")
    p.add_argument("--skip-parity", action="store_true", help="do not compare outputs with x86")
    p.add_argument("--skip-counts", action="store_true", help="do not count instructions")
    p.add_argument("-o", "--out", type=Path, default=RESULTS / "arm_emulation",
                   help="results prefix: writes OUT.md and OUT.json (default benchmarks/results/arm_emulation)")
    p.add_argument("--guest-parity", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.guest_parity:  # inside the chroot: write the outputs the host compares
        parity_outputs(args.guest_parity)
        return 0
    cpus = [c.strip() for c in args.cpus.split(",") if c.strip()]
    unknown = [c for c in cpus if c not in CPUINFO]
    if unknown or not cpus:
        print(f"error: --cpus takes {', '.join(CPUINFO)}; got {args.cpus!r}", file=sys.stderr)
        return 2
    if args.frames < 64 or args.frames % 64 or args.repeat < 1:
        print("error: --frames must be a multiple of 64 (the block) and --repeat at least 1", file=sys.stderr)
        return 2
    try:
        return emulate(args, cpus)
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def exclusive(cache: Path):
    """One run per cache at a time: a second one would unmount the first one's chroot."""
    import fcntl

    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise EmulationError(f"another benchmarks.arm_emulation run is using {cache}") from None
        yield


def emulate(args, cpus) -> int:
    check_host()
    with exclusive(args.cache):
        return emulate_locked(args, cpus)


def emulate_locked(args, cpus) -> int:
    install_host_tools()
    enable_binfmt()
    rootfs = ensure_rootfs(args.cache)
    qemu = ensure_qemu(args.cache)
    qemu_version = run([str(qemu / "qemu-aarch64"), "--version"], what="qemu-aarch64 --version").splitlines()[0]
    install_project(rootfs, qemu)
    models = bundled_models()
    report = {"qemu": qemu_version, "suite": SUITE, "pins": host_pins(), "frames": args.frames}
    tests = None
    with mounted(rootfs, cpus[-1]):
        if not args.skip_tests:
            say("running the TensorFlow-free tests on aarch64 ...")
            # the tests that stream minutes of audio (memory-growth checks, not architecture
            # ones) would take longer under emulation than the rest of the tier together
            out = guest(rootfs, ["/bin/sh", "-c", "cd /opt/tiny-denoise && python -m pytest -q "
                                 "-m 'not train and not long' -p no:cacheprovider tests"], cpu=cpus[-1],
                        what="the aarch64 test run")
            tests = next((line for line in reversed(out.splitlines()) if " passed" in line), out.strip()[-200:])
            say(f"  {tests}")
            report["tests"] = tests
        parity = []
        if not args.skip_parity:
            say("denoising the fixed signals on aarch64 and here ...")
            guest(rootfs, ["/bin/sh", "-c", "cd /opt/tiny-denoise && python -m benchmarks.arm_emulation "
                           "--guest-parity /tmp/parity_aarch64.npz"], cpu=cpus[-1], what="the aarch64 parity run")
            with tempfile.TemporaryDirectory() as tmp:
                parity_outputs(Path(tmp) / "x86.npz")
                with np.load(Path(tmp) / "x86.npz") as x86, np.load(rootfs / "tmp" / "parity_aarch64.npz") as arm:
                    parity = compare(dict(x86), dict(arm))
            report["parity"] = parity
        counts, spread = {}, {}
        if not args.skip_counts:
            names = [m.name for m in models]
            paths = ("compiled", "numpy") if fast_installed() else ("numpy",)
            # the plugin QEMU runs Python itself: a shell or env in between would exec Python
            # through binfmt's uncounted QEMU
            def stages_cmd(frames: int) -> list[str]:
                return ["/opt/venv/bin/python", "-m", "benchmarks.frame_stages", "--marks", "--frames",
                        str(frames), "--path", "both" if len(paths) == 2 else "numpy",
                        *[f"/opt/tiny-denoise/runtime/models/{n}" for n in names]]
            cmd, warmup_cmd = stages_cmd(args.frames), stages_cmd(64)
            for cpu in cpus:
                if "compiled" in paths:
                    # numba's cache is keyed by the CPU it compiles for, and the project copy
                    # starts without one: the run that compiles the kernels allocates
                    # differently from the runs that load them (0.9-5.8 % apart on small
                    # stages), so one uncounted run fills the cache before any counted one
                    say(f"filling numba's cache for {cpu} (an uncounted run) ...")
                    counted(rootfs, cpu, warmup_cmd, f"/tmp/marks-{cpu}-warmup.txt",
                            what=f"the warm-up run on {cpu}")
                runs = []
                for k in range(args.repeat):
                    say(f"counting instructions on {cpu} (run {k + 1} of {args.repeat}) ...")
                    marks = counted(rootfs, cpu, cmd,
                                    f"/tmp/marks-{cpu}.txt", what=f"the counted run on {cpu}")
                    runs.append(stage_counts(marks, names, args.frames, paths))
                counts[cpu] = runs[0]
                if args.repeat > 1:
                    spread[cpu] = repeat_spread(runs)
            report["counts"] = counts
            if spread:
                report["repeat_spread"] = spread
    text = markdown(report.get("parity", []), counts, tests, qemu_version)
    if spread:
        text += "\nLargest relative difference between repeated counts: " + ", ".join(
            f"{cpu} {100 * v['largest']:.3f} %" for cpu, v in spread.items()) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text(text)
    Path(f"{args.out}.json").write_text(json.dumps(report, indent=2))
    print(text)
    bad = [r["model"] for r in report.get("parity", []) if not r["ok"]]
    if bad:
        print(f"error: aarch64 output differs from x86 beyond tolerance for {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
