"""training/build_bundled_sets.sh: its usage, its one-line errors, and the make_dataset
calls it makes (through a stand-in interpreter that records them instead of mixing)."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "training" / "build_bundled_sets.sh"
SHARED = ROOT.parent / "shared" / "data"


def run(*args, env=None):
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=60)


def test_without_arguments_it_prints_its_usage_and_exits_2():
    out = run()
    assert out.returncode == 2
    assert "CORPORA_DIR OUT_DIR" in out.stdout


def test_a_missing_corpus_folder_is_one_line_and_exit_1(tmp_path):
    out = run(tmp_path / "raw", tmp_path / "data")
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and out.stderr.startswith("error:")
    assert "raw/speech" in out.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.skipif(not (SHARED / "speech_16k").is_dir(), reason="../shared/data is not beside the repository")
def test_it_builds_the_six_sets_of_the_model_card(tmp_path):
    raw = tmp_path / "raw"
    (raw / "speech").mkdir(parents=True)
    (raw / "noise").mkdir()
    log = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\n')
    fake.chmod(0o755)
    out = run(raw, tmp_path / "data", env={**os.environ, "PYTHON": str(fake)})
    assert out.returncode == 0, out.stderr
    calls = log.read_text().splitlines()
    outs = [c.split("--out ")[1].split()[0] for c in calls]
    assert [Path(o).name for o in outs] == ["tune8k_v1", "tune16k_v1", "mix8k_v9", "mix16k_v3",
                                            "dev8k_v6", "dev16k_v1"]
    for call, name in zip(calls, (Path(o).name for o in outs)):
        assert call.startswith("-m training.make_dataset --clean")
        assert ("--sample-rate 16000" in call) == ("16k" in name)
        assert ("--only-split dev" in call) == (not name.startswith("mix"))
        count = {"tune": 80, "mix8": 20000, "mix1": 20000, "dev8": 200, "dev1": 200}[name[:4]]
        assert f"--count {count} " in call
        seed = {"tune8k_v1": 2000, "tune16k_v1": 2000, "mix8k_v9": 71, "mix16k_v3": 72,
                "dev8k_v6": 1000, "dev16k_v1": 1000}[name]
        assert f"--seed {seed} " in call
        assert f"{raw}/speech" in call and f"{raw}/noise" in call
