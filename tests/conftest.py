"""Shared fixtures: a seeded rng, speech-like signals and a tiny on-disk corpus made in numpy."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from runtime.example_audio import speech_like

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def needs_shared(*parts):
    """Skip unless ../shared/data/<parts> exists."""
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not present (real data lives beside the repo)")


def needs_modules(*modules, extra: str):
    """Skip unless the packages are installed (the fast tier runs with [runtime] alone)."""
    gone = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(gone), reason=f"{', '.join(gone)} not installed (the [{extra}] extra)")


#: PESQ/STOI scoring and plots
needs_metrics = needs_modules("pesq", "pystoi", "matplotlib", extra="dev")
#: rooms and channel responses in dataset creation
needs_effects = needs_modules("pyroomacoustics", "audiomentations", "scipy", extra="data")

#: Test modules that train or export with TensorFlow: the "train" tier. Without TensorFlow
#: they are not collected, so `pytest -m "not train"` runs in a [runtime]-only venv.
TRAIN_MODULES = ("test_export.py", "test_models.py", "test_train.py", "test_from_tflite.py", "test_tune.py")
if importlib.util.find_spec("tensorflow") is None:
    collect_ignore = list(TRAIN_MODULES) + ["make_test_models.py"]


def pytest_configure(config):
    config.addinivalue_line("markers", "train: trains or exports with TensorFlow (the [train] extra); "
                                       "the fast tier is -m 'not train'")
    config.addinivalue_line("markers", "long: streams minutes of audio to check memory, not results "
                                       "(benchmarks.arm_emulation leaves these out under emulation)")


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).name in TRAIN_MODULES:
            item.add_marker(pytest.mark.train)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """Folders speech/ (3 'speakers', nested like a corpus) and noise/ at 16 kHz, flac + wav."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(7)
    for spk in ("alice", "bob", "carol"):
        for i in range(3):
            path = root / "speech" / spk / f"{spk}_{i}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            audio = np.concatenate([np.zeros(1600), speech_like(16000, 2.0, rng), np.zeros(2400)])
            sf.write(path, audio, 16000)
    (root / "noise").mkdir()
    for i in range(3):
        noise = np.cumsum(rng.standard_normal(16000 * 3)) if i == 0 else rng.standard_normal(16000 * 3)
        noise = noise / np.max(np.abs(noise)) * 0.3
        sf.write(root / "noise" / f"noise_{i}.wav", noise, 16000)
    return root


@pytest.fixture(scope="session")
def tiny_mix(tiny_corpus, tmp_path_factory):
    """A made dataset (manifest dir) at 8 kHz with a dev split, for training tests."""
    from training.make_dataset import MixConfig, make_dataset

    out = tmp_path_factory.mktemp("mix")
    cfg = MixConfig(sample_rate=8000, snr_min=0, snr_max=10, seconds=1.0, seed=3,
                    generated_noise=0.3, dev_fraction=0.34, group_regex="^([a-z]+)_")
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], out, 24, cfg, progress=False)
    return out


from .models_fixtures import exported, stored_models, tiny_runs  # noqa: E402,F401  (session fixtures)
