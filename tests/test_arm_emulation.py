"""benchmarks.frame_stages and benchmarks.arm_emulation: the per-stage cost of a frame, and the
emulated aarch64 run (which runs here only when its cached root file system and QEMU exist)."""
from __future__ import annotations

import contextlib
import json
import os

import numpy as np
import pytest

from benchmarks import arm_emulation, frame_stages
from runtime.stream import MODELS_DIR

CACHE = arm_emulation.DEFAULT_CACHE
EMULATION_READY = ((CACHE / "rootfs" / ".tiny-denoise-ready").exists() and (CACHE / "qemu" / "qemu-aarch64").exists()
                   and hasattr(os, "geteuid") and os.geteuid() == 0)
#: CI runs the emulated check only when asked (it takes minutes): .ci/run's optional stage
IN_CI_WITHOUT_ARM = bool(os.environ.get("CI")) and os.environ.get("TINY_DENOISE_ARM_CI") != "1"


def test_frame_stages_times_every_stage_and_the_frame_holds_the_invoke(capsys):
    rows = [frame_stages.measure(MODELS_DIR / name, frames=64, warmup=10)
            for name in ("crnn_int8.tflite", "cr_ced_int8.tflite")]
    for r in rows:
        us = r["us_per_frame"]
        assert set(us) == {*frame_stages.STAGES, "outside_invoke", "outside_invoke_chunk_4",
                           "outside_invoke_chunk_64"}
        assert all(us[s] > 0 for s in frame_stages.STAGES)
        assert us["outside_invoke"] == pytest.approx(us["frame"] - us["invoke"])
    table = frame_stages.markdown(rows)
    assert "crnn_int8.tflite" in table and "outside / invoke" in table


def test_marks_bracket_each_stage_in_the_order_the_host_reads_them(monkeypatch):
    """--marks writes two marks a stage, models in order: exactly what stage_counts parses."""
    calls = []
    monkeypatch.setattr(frame_stages, "mark", lambda: calls.append(len(calls)))
    models = ["crnn_int8.tflite", "crnn16k_int8.tflite"]
    for name in models:
        frame_stages.measure(MODELS_DIR / name, frames=64, warmup=4, marks=True)
    assert len(calls) == 2 * len(frame_stages.STAGES) * len(models)
    # fake counts: stage s of model m costs (m + 1) * (s + 1) * 1000 instructions a frame
    counts, total = [], 0
    for m in range(len(models)):
        for s in range(len(frame_stages.STAGES)):
            counts.append(total)
            total += (m + 1) * (s + 1) * 1000 * 12
            counts.append(total)
            total += 777  # work between stages is not counted
    rows = arm_emulation.stage_counts(counts, models, frames=12)
    assert [r["model"] for r in rows] == models
    per = rows[1]["instructions_per_frame"]
    invoke_at = frame_stages.STAGES.index("invoke")
    assert per["frame"] == 2000 and per["invoke"] == 2000 * (invoke_at + 1)
    assert per["outside_invoke"] == per["frame"] - per["invoke"]
    assert per["outside_invoke_chunk_64"] == per["chunk_64"] - per["invoke"]
    with pytest.raises(arm_emulation.EmulationError, match=f"expected {len(counts)} marks"):
        arm_emulation.stage_counts(counts[:-2], models, frames=12)
    # both frame paths: each model's compiled run, then its numpy one
    both = arm_emulation.stage_counts(counts, models[:1], frames=12, paths=("compiled", "numpy"))
    assert [(r["model"], r["path"]) for r in both] == [(models[0], "compiled"), (models[0], "numpy")]
    assert both[1]["instructions_per_frame"]["frame"] == rows[1]["instructions_per_frame"]["frame"]


def test_frame_stages_measures_each_frame_path_it_is_asked_for(capsys):
    paths = ["numpy", "compiled"] if frame_stages.kernels_available() else ["numpy"]
    assert frame_stages.main([str(MODELS_DIR / "crnn_int8.tflite"), "--frames", "64", "--warmup", "4",
                              "--path", "both" if len(paths) == 2 else "numpy"]) == 0
    table = capsys.readouterr().out
    assert all(f"crnn_int8.tflite ({p})" in table for p in paths)


def test_mark_is_harmless_without_the_plugin(capfd):
    """A mark writes to a descriptor nothing has open: no error, and nothing on stdout/stderr."""
    with pytest.raises(OSError):
        os.fstat(frame_stages.MARK_FD)
    frame_stages.mark()
    assert capfd.readouterr() == ("", "")


def test_marks_file_parsing_and_cpuinfo():
    assert arm_emulation.parse_marks("mark 10\nmark 25\ntotal 99\n") == [10, 25]
    text = arm_emulation.cpuinfo_text(*arm_emulation.CPUINFO["cortex-a76"], cores=2)
    assert text.count("processor\t:") == 2 and "CPU part\t: 0xd0b" in text and "asimddp" in text
    assert "asimddp" not in arm_emulation.cpuinfo_text(*arm_emulation.CPUINFO["cortex-a53"])


def test_parity_tolerances_by_weight_type():
    ref = {"a_float32.tflite": np.zeros(4), "b_int8.tflite": np.zeros(4)}
    close = {"a_float32.tflite": np.full(4, 5e-7), "b_int8.tflite": np.full(4, 5e-5)}
    far = {"a_float32.tflite": np.full(4, 5e-6), "b_int8.tflite": np.full(4, 5e-4)}
    assert all(r["ok"] for r in arm_emulation.compare(ref, close))
    assert not any(r["ok"] for r in arm_emulation.compare(ref, far))
    with pytest.raises(arm_emulation.EmulationError, match="no output for b_int8"):
        arm_emulation.compare(ref, {"a_float32.tflite": np.zeros(4)})


def test_cli_refuses_bad_options_in_one_line(capsys):
    assert arm_emulation.main(["--cpus", "cortex-x9"]) == 2
    assert arm_emulation.main(["--frames", "100"]) == 2
    err = capsys.readouterr().err
    assert "--cpus takes cortex-a53, cortex-a76" in err and "Traceback" not in err


def test_without_root_it_says_so(monkeypatch, capsys):
    monkeypatch.setattr(arm_emulation.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(arm_emulation.platform, "machine", lambda: "x86_64")
    assert arm_emulation.main(["--skip-tests"]) == 1
    assert "needs root" in capsys.readouterr().err


def test_the_mirror_comes_from_the_hosts_apt_sources(tmp_path, monkeypatch):
    sources = tmp_path / "debian.sources"
    sources.write_text("Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n\n"
                       "Types: deb\nURIs: http://mirror.example/debian-security\n")
    real_path = arm_emulation.Path
    monkeypatch.setattr(arm_emulation, "Path", lambda p, *a: (tmp_path / "none" if p == "/etc/apt/sources.list"
                                                              else tmp_path if p == "/etc/apt/sources.list.d"
                                                              else real_path(p, *a)))
    assert arm_emulation.debian_mirror() == "http://mirror.example/debian"


@pytest.mark.skipif(not EMULATION_READY, reason=f"no cached arm64 root file system and plugin QEMU in {CACHE} "
                                                "(build them with: sudo python -m benchmarks.arm_emulation)")
@pytest.mark.skipif(IN_CI_WITHOUT_ARM, reason="CI runs the emulated aarch64 check only with TINY_DENOISE_ARM_CI=1")
def test_runtime_on_emulated_aarch64_matches_x86_and_counts_repeat(tmp_path, capsys):
    out = tmp_path / "arm"
    rc = arm_emulation.main(["--skip-tests", "--cpus", "cortex-a76", "--frames", "64", "--repeat", "2",
                             "-o", str(out)])
    err = capsys.readouterr().err
    if "another benchmarks.arm_emulation run is using" in err:
        pytest.skip("a benchmarks.arm_emulation run holds the cache")
    assert rc == 0, err[-500:]
    report = json.loads((tmp_path / "arm.json").read_text())
    assert {r["model"] for r in report["parity"]} == {p.name for p in arm_emulation.bundled_models()}
    assert all(r["ok"] for r in report["parity"])
    rows = report["counts"]["cortex-a76"]
    for r in rows:
        per = r["instructions_per_frame"]
        assert per["invoke"] > 10_000 and per["frame"] > per["invoke"] and per["frame_no_postfilter"] < per["frame"]
    # the numpy path repeats to 0.1 %; the compiled one's JIT-loaded code and its dispatcher's
    # caches land at other addresses in each process, which moved a stage by up to 0.33 %
    assert report["repeat_spread"]["cortex-a76"]["largest"] < 5e-3, report["repeat_spread"]


def test_counts_come_only_from_runs_after_one_that_fills_numbas_cache(tmp_path, monkeypatch):
    """With the compiled path, each CPU gets one uncounted run first; its marks are never used."""
    rootfs = tmp_path / "rootfs"
    (rootfs / "tmp").mkdir(parents=True)
    names = [p.name for p in arm_emulation.bundled_models()]
    per_run = 2 * len(frame_stages.STAGES) * len(names) * 2
    calls = []

    def fake_counted(root, cpu, cmd, marks_file, what=None):
        frames = int(cmd[cmd.index("--frames") + 1])
        calls.append((cpu, frames, marks_file))
        # the warm-up's marks would give a wildly different count, so using them would show
        step = 10_000 if "warmup" in marks_file else 1_000
        return [k * step * frames for k in range(per_run)]

    for step in ("check_host", "install_host_tools", "enable_binfmt", "install_project"):
        monkeypatch.setattr(arm_emulation, step, lambda *a, **k: None)
    monkeypatch.setattr(arm_emulation, "ensure_rootfs", lambda cache: rootfs)
    monkeypatch.setattr(arm_emulation, "ensure_qemu", lambda cache: tmp_path)
    monkeypatch.setattr(arm_emulation, "run", lambda *a, **k: "qemu-aarch64 version 0.0\n")
    monkeypatch.setattr(arm_emulation, "mounted", lambda *a, **k: contextlib.nullcontext())
    monkeypatch.setattr(arm_emulation, "fast_installed", lambda: True)
    monkeypatch.setattr(arm_emulation, "host_pins", lambda: ["numpy==0"])  # numba need not be here
    monkeypatch.setattr(arm_emulation, "counted", fake_counted)
    out = tmp_path / "arm"
    assert arm_emulation.main(["--skip-tests", "--skip-parity", "--cache", str(tmp_path / "cache"),
                               "--frames", "128", "--repeat", "2", "-o", str(out)]) == 0
    assert [(c, f) for c, f, _ in calls] == [("cortex-a53", 64), ("cortex-a53", 128), ("cortex-a53", 128),
                                             ("cortex-a76", 64), ("cortex-a76", 128), ("cortex-a76", 128)]
    report = json.loads((tmp_path / "arm.json").read_text())
    assert report["repeat_spread"]["cortex-a76"]["largest"] == 0
    assert report["counts"]["cortex-a76"][0]["instructions_per_frame"]["analyze"] == pytest.approx(1_000)


def test_repeat_spread_is_relative_to_the_stage_or_the_floor():
    def run(**counts):
        per = {s: 1_000_000.0 for s in arm_emulation.STAGES}
        per.update(counts)
        return [{"instructions_per_frame": per}]

    small = arm_emulation.repeat_spread([run(postfilter=8_000), run(postfilter=8_044)])
    assert small["by_stage"]["postfilter"] == pytest.approx(44 / arm_emulation.SPREAD_FLOOR)
    big = arm_emulation.repeat_spread([run(frame=200_000), run(frame=202_000)])
    assert big["largest"] == pytest.approx(0.01)
