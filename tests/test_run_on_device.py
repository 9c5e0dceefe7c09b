"""run_on_device.sh against a fake adb that answers like a real device and records its calls."""
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from benchmarks.device_report import parse_benchmark_output
from runtime.errors import DenoiseError

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "run_on_device.sh"

BENCH_OUTPUT = """STARTING!
Log parameter values verbosely: [0]
Graph: [/data/local/tmp/tiny_denoise_bench/m.tflite]
The input model file size (MB): 0.048
Initialized session in 3.1ms.
Running benchmark for at least 50 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=50 first=410 curr=95 min=90 max=410 avg=101.4 std=44
Inference timings in us: Init: 3102, First inference: 410, Warmup (avg): 101.4, Inference (avg): 87.5
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
Memory footprint delta from the start of the tool (MB): init=2.1 overall=3.4
Overall peak memory footprint (MB) via periodic monitoring: 7.9
"""

FAKE_ADB = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_ADB_LOG"
if [ "$1" = "-s" ]; then shift 2; fi
case "$1" in
  devices)
    echo "List of devices attached"
    case "$FAKE_ADB_MODE" in
      none) ;;
      unauthorized) printf 'R58M123\tunauthorized\n' ;;
      two) printf 'R58M123\tdevice\nemulator-5554\tdevice\n' ;;
      *) printf 'R58M123\tdevice\n' ;;
    esac
    echo ;;
  push) exit 0 ;;
  shell)
    shift
    case "$1" in
      getprop)
        case "$2" in
          ro.product.model) echo "Pixel 7" ;;
          ro.product.cpu.abi) echo "arm64-v8a" ;;
          ro.soc.model) echo "GS201" ;;
          ro.build.version.release) echo "14" ;;
        esac ;;
      */benchmark_model)
        if [ "$FAKE_ADB_MODE" = "fail" ]; then echo "ERROR: failed to load model"; exit 1; fi
        cat "$FAKE_BENCH_OUTPUT" ;;
      *) exit 0 ;;
    esac ;;
esac
"""


@pytest.fixture
def fake_env(tmp_path, stored_models):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    adb = bindir / "adb"
    adb.write_text(FAKE_ADB)
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "bench.txt").write_text(BENCH_OUTPUT)
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF fake")
    model = tmp_path / "cr_ced_int8.tflite"
    shutil.copy(stored_models[("cr-ced", "int8")], model)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", FAKE_ADB_LOG=str(tmp_path / "calls.log"),
               FAKE_BENCH_OUTPUT=str(tmp_path / "bench.txt"), FAKE_ADB_MODE="one")
    return {"env": env, "binary": binary, "model": model, "tmp": tmp_path}


def run(fake, *args, mode="one"):
    env = dict(fake["env"], FAKE_ADB_MODE=mode)
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def calls(fake):
    path = fake["tmp"] / "calls.log"
    return path.read_text().splitlines() if path.exists() else []


def test_one_device_full_flow_writes_results_and_cleans_up(fake_env):
    out = fake_env["tmp"] / "results"
    res = run(fake_env, "--benchmark-binary", str(fake_env["binary"]), "--threads", "2",
              "--use-xnnpack", "--out", str(out), str(fake_env["model"]))
    assert res.returncode == 0, res.stderr
    log = calls(fake_env)
    assert any("push" in c and "benchmark_model" in c for c in log)
    run_call = next(c for c in log if "/benchmark_model --graph=" in c)
    assert "--num_threads=2" in run_call and "--use_xnnpack=true" in run_call
    assert "rm -rf /data/local/tmp/tiny_denoise_bench" in log[-1]
    rows = json.loads(next(out.glob("*.json")).read_text())
    row = rows[0]
    assert row["device_model"] == "Pixel 7" and row["abi"] == "arm64-v8a" and row["soc"] == "GS201"
    assert row["latency_per_frame_us"] == 87.5 and row["peak_mb"] == 7.9
    assert row["real_time_factor"] == pytest.approx(87.5e-6 / (64 / 8000))
    assert next(out.glob("*.csv")).read_text().startswith("serial,")
    assert "x real time" in res.stdout


@pytest.mark.parametrize("mode,message", [("none", "no adb device connected"),
                                          ("unauthorized", "unauthorized"),
                                          ("two", "choose one with -s SERIAL")])
def test_device_selection_errors_are_clear(fake_env, mode, message):
    res = run(fake_env, "--benchmark-binary", str(fake_env["binary"]), str(fake_env["model"]), mode=mode)
    assert res.returncode != 0
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not any("push" in c for c in calls(fake_env))


def test_serial_picks_one_of_two_devices(fake_env):
    res = run(fake_env, "-s", "emulator-5554", "--benchmark-binary", str(fake_env["binary"]),
              "--out", str(fake_env["tmp"] / "r"), str(fake_env["model"]), mode="two")
    assert res.returncode == 0, res.stderr
    assert all(c.startswith("-s emulator-5554") for c in calls(fake_env) if c != "devices")


def test_benchmark_failure_exits_nonzero_and_still_cleans_up(fake_env):
    res = run(fake_env, "--benchmark-binary", str(fake_env["binary"]), "--out",
              str(fake_env["tmp"] / "r"), str(fake_env["model"]), mode="fail")
    assert res.returncode != 0
    assert "benchmark_model failed" in res.stderr
    assert "rm -rf /data/local/tmp/tiny_denoise_bench" in calls(fake_env)[-1]


def test_missing_adb_and_missing_binary(fake_env):
    bare = fake_env["tmp"] / "bare_bin"  # a PATH with the script's first tools but no adb
    bare.mkdir()
    for tool in ("dirname",):
        (bare / tool).symlink_to(shutil.which(tool))
    env = dict(fake_env["env"], PATH=str(bare))
    res = subprocess.run(["/bin/bash", str(SCRIPT), "--benchmark-binary", str(fake_env["binary"]),
                          str(fake_env["model"])], env=env, capture_output=True, text=True)
    assert res.returncode != 0 and "adb not found" in res.stderr
    res = run(fake_env, str(fake_env["model"]))
    assert res.returncode != 0 and "benchmark_model" in res.stderr


def test_parser_refuses_output_without_timings():
    assert parse_benchmark_output(BENCH_OUTPUT)["avg_us"] == 87.5
    with pytest.raises(DenoiseError):
        parse_benchmark_output("Segmentation fault")
