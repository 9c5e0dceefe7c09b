import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from runtime import StreamDenoiser, denoise, preset
from runtime.dsp import kernels_available
from runtime.errors import AudioError, ModelError
from runtime.model_file import IdentityModel


def _stream(sd, x, rng, max_chunk=4000):
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, max_chunk + 1))
        parts.append(sd.process(x[i:i + n]))
        i += n
    parts.append(sd.flush())
    return np.concatenate(parts)


@pytest.mark.parametrize("name", ["paper8k", "seed16k"])
def test_identity_model_reconstructs_input_after_latency(name, rng):
    sd = StreamDenoiser(IdentityModel(preset(name)), postfilter="none")
    x = rng.uniform(-1, 1, 9001)
    y = _stream(sd, x, rng)
    L = sd.latency_samples
    assert len(y) == len(x) + L
    assert np.max(np.abs(y[L:] - x)) <= 1e-5
    assert np.max(np.abs(y[:L])) <= 1e-6  # before the first input sample: silence


def test_chunks_of_zero_and_one_sample_and_int16(rng):
    sd = StreamDenoiser(IdentityModel(preset("paper8k")), postfilter="none")
    x16 = (rng.uniform(-0.5, 0.5, 700) * 32767).astype(np.int16)
    parts = [sd.process(np.zeros(0, np.float32))]
    parts += [sd.process(x16[i:i + 1]) for i in range(len(x16))]
    y = np.concatenate(parts + [sd.flush()])
    assert np.max(np.abs(y[192:] - x16 / 32768.0)) < 1e-5


@pytest.mark.parametrize("bad", [np.array([0.0, np.nan]), np.array([np.inf]), np.zeros((10, 2))])
def test_bad_chunks_are_refused(bad):
    sd = StreamDenoiser(IdentityModel(preset("paper8k")), postfilter="none")
    with pytest.raises(AudioError):
        sd.process(bad)


def test_wrong_declared_sample_rate_is_refused():
    with pytest.raises(AudioError, match="16000 Hz"):
        StreamDenoiser(IdentityModel(preset("paper8k")), sample_rate=16000)


@pytest.mark.parametrize("kind", ["cr-ced", "crnn", "crnn-stacked", "crnn-lookahead"])
def test_stream_equals_offline_for_any_chunking(kind, stored_models, rng):
    path = stored_models[(kind, "float32")]
    if kind == "crnn-stacked":  # the stored file really carries the second LSTM's states
        assert set(StreamDenoiser(path).spec.state_shapes) == {"h", "c", "h2", "c2"}
    x = rng.standard_normal(12000) * 0.1
    ref = denoise(x, 8000, str(path))
    assert ref.shape == x.shape
    for trial in range(3):
        sd = StreamDenoiser(path)
        y = _stream(sd, x, rng)
        L = sd.latency_samples
        assert np.max(np.abs(y[L:L + len(x)] - ref)) <= 1e-6


def test_reset_starts_a_new_stream(stored_models, rng):
    path = stored_models[("crnn", "int8")]
    x = rng.standard_normal(3000) * 0.1
    sd = StreamDenoiser(path)
    first = np.concatenate([sd.process(x), sd.flush()])
    sd.process(rng.standard_normal(999))
    sd.reset()
    second = np.concatenate([sd.process(x), sd.flush()])
    assert np.array_equal(first, second)


def test_other_sample_rates_are_resampled_and_keep_length(rng):
    x = rng.standard_normal(16000) * 0.1
    y = denoise(x, 16000, StreamDenoiser(IdentityModel(preset("paper8k")), postfilter="none"))
    assert y.shape == x.shape


def _band_energy(x, rate, lo_hz, hi_hz):
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return spectrum[(freqs >= lo_hz) & (freqs < hi_hz)].sum()


@pytest.mark.parametrize("rate", [16000, 48000])
def test_high_band_is_kept_with_the_models_gain(rate, rng):
    """An input above the model's rate keeps its band above 4 kHz, scaled by the gain the
    model applied at the top of its own band: the identity gives the input back, a
    constant mask c gives c * input; 'drop' returns the band-limited signal."""
    x = rng.standard_normal(rate) * 0.1
    identity = StreamDenoiser(IdentityModel(preset("paper8k")), postfilter="none")
    np.testing.assert_allclose(denoise(x, rate, identity), x, atol=1e-4)

    quarter = IdentityModel(preset("paper8k"))
    quarter.mask = np.full_like(quarter.mask, 0.25)
    y = denoise(x, rate, StreamDenoiser(quarter, min_gain_db=None, postfilter="none"))
    np.testing.assert_allclose(y, 0.25 * x, atol=1e-4)

    dropped = denoise(x, rate, identity, high_band="drop")
    assert _band_energy(dropped, rate, 4400, rate / 2) < 1e-4 * _band_energy(x, rate, 4400, rate / 2)
    assert _band_energy(dropped, rate, 0, 3600) == pytest.approx(_band_energy(x, rate, 0, 3600), rel=1e-3)
    with pytest.raises(AudioError, match="high_band"):
        denoise(x, rate, identity, high_band="keep")


def test_min_gain_limits_attenuation(stored_models, rng):
    path = stored_models[("cr-ced", "float32")]
    x = rng.standard_normal(4000) * 0.1
    full = denoise(x, 8000, str(path))
    limited = denoise(x, 8000, str(path), min_gain_db=-6)
    assert np.sum(limited ** 2) >= np.sum(full ** 2)


@pytest.mark.long
def test_streaming_ten_minutes_does_not_grow_memory(stored_models):
    """Ten minutes at 8 kHz in 1 s chunks: traced memory after the first minute stays flat.
    64 KB over 67,500 frames catches any leak of a byte a frame; a leaked Python object
    costs dozens (an hour took six times as long under tracemalloc and caught no more)."""
    path = stored_models[("crnn", "int8")]
    sd = StreamDenoiser(path)
    chunk = np.random.default_rng(0).standard_normal(8000) * 0.1
    for _ in range(60):
        sd.process(chunk)
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for _ in range(600 - 60):
        sd.process(chunk)
    now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert now - base < 64 * 1024
    assert peak - base < 1024 * 1024  # the 1 s output array plus transients, never more


@pytest.mark.parametrize("compiled", [pytest.param(False, id="numpy"), pytest.param(True, id="compiled", marks=pytest.mark.skipif(
    not kernels_available(), reason="numba is not installed (the [fast] extra)"))])
@pytest.mark.parametrize("kind", ["crnn", "crnn-lookahead"])
def test_frame_path_allocates_no_new_arrays_in_steady_state(kind, compiled, stored_models):
    path = stored_models[(kind, "int8")]
    sd = StreamDenoiser(path, compiled=compiled)
    frame = np.random.default_rng(0).standard_normal(sd.spec.hop)
    for _ in range(50):
        sd.process_frame(frame)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(2000):
        sd.process_frame(frame)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "lineno") if s.size_diff > 0)
    assert grown < 4096


def test_postfilter_is_on_by_default_removes_steady_noise_and_can_be_turned_off(rng):
    """With a model that passes everything, the default post-filter alone acts: steady
    white noise loses most of its energy once its floor is tracked (the factor, a square
    root of a Wiener gain floored at -20 dB, goes down to -10 dB); "none" leaves it."""
    noise = rng.standard_normal(8000 * 3) * 0.05
    default = StreamDenoiser(IdentityModel(preset("paper8k")))
    assert default.postfilter == "wiener"
    cleaned = denoise(noise, 8000, default)
    late = slice(8000 * 2, None)
    assert np.sum(cleaned[late] ** 2) < 0.2 * np.sum(noise[late] ** 2)
    alone = denoise(noise, 8000, StreamDenoiser(IdentityModel(preset("paper8k")), postfilter="none"))
    assert np.max(np.abs(alone - noise)) < 1e-5
    with pytest.raises(ModelError, match="postfilter"):
        StreamDenoiser(IdentityModel(preset("paper8k")), postfilter="spectral")


def test_stream_applies_the_run_time_settings_its_model_carries(stored_models, rng):
    """The stored 16 kHz CRNN was exported with -25 dB, exponent 1, a -15 dB floor, a 1 s
    window in 4 minima; a caller's arguments still override them."""
    from runtime.dsp import WienerGain
    from runtime.spec import RUN_TIME_DEFAULTS

    path = Path(stored_models[("crnn", "int8")]).parent / "crnn16k_int8.tflite"
    sd = StreamDenoiser(path)
    assert sd.min_gain_db == -25.0 and sd.postfilter == "wiener"
    assert sd.dsp.min_gain == pytest.approx(10 ** (-25 / 20))
    expected = WienerGain(sd.spec, floor_db=-15.0, window_s=1.0, sub_windows=4,
                          warmup_frames=sd.spec.n_fft // sd.spec.hop - 1, exponent=1.0)
    assert sd.dsp.postfilter.settings == expected.settings
    x = rng.standard_normal(16000) * 0.1
    own = np.concatenate([sd.process(x), sd.flush()])
    override = StreamDenoiser(path, min_gain_db=RUN_TIME_DEFAULTS["min_gain_db"])
    assert override.min_gain_db == -20.0
    assert not np.allclose(own, np.concatenate([override.process(x), override.flush()]))
    assert StreamDenoiser(path, postfilter="none").dsp.postfilter is None
    # a file exported before the settings existed gets today's defaults
    old = StreamDenoiser(stored_models[("crnn", "int8")])
    assert (old.min_gain_db, old.postfilter) == (-20.0, "wiener")


@pytest.mark.parametrize("kind,weights", [("cr-ced", "int8"), ("crnn", "int8"), ("crnn", "float32"),
                                          ("crnn-stacked", "int8"), ("crnn-lookahead", "int8")])
def test_blocks_of_frames_equal_frame_by_frame_even_when_mixed(kind, weights, stored_models, rng):
    """process() runs the frames a chunk completes as blocks (batched FFT, features,
    post-filter, overlap-add); interleaved with single frames it stays the frame path."""
    path = stored_models[(kind, weights)]
    frame_wise, blocked = StreamDenoiser(path), StreamDenoiser(path)
    hop = frame_wise.spec.hop
    x = rng.standard_normal(hop * 700) * 0.1
    ref = np.concatenate([frame_wise.process_frame(x[i:i + hop]).copy() for i in range(0, len(x), hop)])
    parts, i = [], 0
    for n in (hop * 3, hop, hop * 64, hop * 65, hop * 130):  # whole hops: frames may follow
        parts.append(blocked.process(x[i:i + n]))
        i += n
        parts.append(blocked.process_frame(x[i:i + hop]).copy())  # a single frame between blocks
        i += hop
    for n in (5, 1, hop - 1, hop * 64 + 1, 7, hop * 90):  # partial hops wait for the next chunk
        parts.append(blocked.process(x[i:i + n]))
        i += n
    parts.append(blocked.process(x[i:]))
    got = np.concatenate(parts)
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref)) < 1e-9


@pytest.mark.parametrize("compiled", [pytest.param(False, id="numpy"), pytest.param(True, id="compiled", marks=pytest.mark.skipif(
    not kernels_available(), reason="numba is not installed (the [fast] extra)"))])
def test_chunks_of_fewer_frames_than_min_block_take_the_frame_path(compiled, stored_models, rng):
    """A chunk completing fewer than min_block frames runs them one by one (a block costs
    more per frame there); from min_block frames on it runs as one block; same output."""
    path = stored_models[("crnn", "int8")]
    sd, ref = StreamDenoiser(path, compiled=compiled), StreamDenoiser(path, compiled=compiled)
    small = sd.dsp.min_block
    assert small == (12 if compiled else 3)
    blocks = []
    run_block = sd.model.run_block
    sd.model.run_block = lambda features, out: blocks.append(len(out)) or run_block(features, out)
    hop = sd.spec.hop
    x = rng.standard_normal(hop * (2 * small + 3)) * 0.1
    got = np.concatenate([sd.process(x[:hop * (small - 1)]), sd.process(x[hop * (small - 1):])])
    assert blocks == [small + 4]
    want = np.concatenate([ref.process_frame(x[i:i + hop]).copy() for i in range(0, len(x), hop)])
    assert np.max(np.abs(got - want)) < 1e-9


@pytest.mark.skipif(not kernels_available(), reason="numba is not installed (the [fast] extra)")
@pytest.mark.parametrize("kind,weights", [("cr-ced", "int8"), ("crnn", "int8"), ("crnn", "float32"),
                                          ("crnn-stacked", "int8"), ("crnn-lookahead", "int8")])
def test_compiled_and_numpy_frame_paths_give_the_same_stream(kind, weights, stored_models, rng):
    """The kernels change how the frame is computed, not what: frame by frame and in blocks
    the two paths agree to rounding, through the models' int8 input steps too."""
    path = stored_models[(kind, weights)]
    x = rng.standard_normal(8000 * 3) * 0.1
    x[8000:12000] += 0.5 * np.sin(np.arange(4000) * 0.3)
    numpy_path, compiled = StreamDenoiser(path, compiled=False), StreamDenoiser(path, compiled=True)
    assert compiled.dsp.compiled and compiled.dsp.postfilter.compiled
    assert not numpy_path.dsp.compiled and not numpy_path.dsp.postfilter.compiled
    hop = numpy_path.spec.hop
    split = 8000 - 8000 % hop

    def run(sd):  # the first second frame by frame, then blocks
        parts = [sd.process_frame(x[i:i + hop]).copy() for i in range(0, split, hop)]
        return np.concatenate(parts + [sd.process(x[split:]), sd.flush()])
    a, b = run(numpy_path), run(compiled)
    assert a.shape == b.shape and np.max(np.abs(a - b)) < 1e-9


@pytest.mark.parametrize("weights", ["float32", "int8"])
def test_lookahead_mask_is_applied_to_the_frame_before_the_newest(weights, stored_models, rng):
    """A model with lookahead_frames = 1 hears frame t and its mask goes to frame t - 1:
    the stream equals the offline STFT masked that way (each frame run through the model
    on its own), one hop later than a causal model's output."""
    from runtime import dsp
    from runtime.model_file import TfliteDenoiserModel

    path = stored_models[("crnn-lookahead", weights)]
    sd = StreamDenoiser(path)
    spec = sd.spec
    assert spec.lookahead_frames == 1 and "look" in spec.state_shapes
    assert sd.latency_samples == spec.n_fft - spec.hop + spec.hop
    x = rng.standard_normal(6000) * 0.1
    x[2000:4000] += 0.5 * np.sin(np.arange(2000) * 0.2)
    # offline: features of the signal and one more hop of silence, masks moved back a frame
    spectra = dsp.stft(np.concatenate([x, np.zeros(spec.hop)]), spec)
    feats = dsp.features(np.abs(spectra), spec)
    model = TfliteDenoiserModel(path)
    masks = np.stack([np.asarray(model(f[None, None, :]), np.float64).reshape(-1).copy() for f in feats])
    spectra, masks = spectra[:-1], masks[1:]
    gains = np.maximum(masks * dsp.postfilter_gains(np.abs(spectra), spec), 10 ** (spec.setting("min_gain_db") / 20))
    want = dsp.istft(spectra * gains, spec, len(x))
    y = _stream(sd, x, rng)
    L = sd.latency_samples
    assert len(y) == len(x) + L
    assert np.max(np.abs(y[L:] - want)) < 1e-5
    # the first hop out is the delay line's empty frame, and the post-filter never heard it
    assert np.all(y[:spec.hop] == 0) and np.max(np.abs(want[:spec.hop])) > 0
    assert np.max(np.abs(denoise(x, 8000, str(path)) - want)) < 1e-5
