import numpy as np
import pytest

from runtime import dsp
from runtime.errors import SpecError
from runtime.spec import preset


@pytest.mark.parametrize("name", ["paper8k", "seed16k"])
@pytest.mark.parametrize("length", [1, 63, 64, 65, 191, 192, 1000, 4097])
def test_identity_analysis_synthesis_reconstructs_input(name, length, rng):
    spec = preset(name)
    x = rng.uniform(-1, 1, length)
    y = dsp.istft(dsp.stft(x, spec), spec, length)
    assert y.shape == x.shape
    assert np.max(np.abs(y - x)) <= 1e-6


def test_window_is_periodic_hamming():
    w = dsp.analysis_window(preset("paper8k"))
    n = np.arange(256)
    assert np.allclose(w, 0.54 - 0.46 * np.cos(2 * np.pi * n / 256))
    assert w[0] == pytest.approx(0.08) and w[128] == pytest.approx(1.0)


def _run_frames(spec, x, mask_fn):
    fp = dsp.FrameProcessor(spec)
    n = dsp.frame_count(len(x), spec)
    padded = np.zeros(n * spec.hop)
    padded[:len(x)] = x
    spectra, feats, ctx, out = [], [], [], []
    for i in range(n):
        fp.analyze(padded[i * spec.hop:(i + 1) * spec.hop])
        spectra.append(fp.complex_spectrum())
        feats.append(fp.features.copy())
        ctx.append(fp.context.copy())
        out.append(fp.synthesize(mask_fn(i)).copy())
    return np.array(spectra), np.array(feats), np.array(ctx), np.concatenate(out)


def test_frame_processor_equals_offline_functions(rng):
    spec = preset("paper8k", feature_mean=list(rng.normal(size=129)),
                  feature_std=list(rng.uniform(0.5, 2, 129)))
    x = rng.standard_normal(3000) * 0.1
    masks = rng.uniform(0, 1, (dsp.frame_count(len(x), spec), spec.n_bins))
    spectra, feats, ctx, out = _run_frames(spec, x, lambda i: masks[i])
    ref = dsp.stft(x, spec)
    # the frame path computes in float32: agree to float32 rounding
    assert np.max(np.abs(spectra - ref)) < 1e-5 * np.max(np.abs(ref))
    ref_feats = dsp.features(np.abs(ref), spec)
    assert np.max(np.abs(feats - ref_feats)) < 1e-4
    assert np.max(np.abs(ctx - dsp.context_windows(ref_feats, 8))) < 1e-4
    L = spec.latency_samples
    ref_out = dsp.istft(dsp.apply_output(ref, masks, spec), spec, len(x))
    assert np.max(np.abs(out[L:L + len(x)] - ref_out)) < 1e-6


def test_features_and_context_are_causal(rng):
    spec = preset("paper8k")
    x = rng.standard_normal(4000)
    y = x.copy()
    y[2000:] = rng.standard_normal(2000)
    fx = dsp.context_windows(dsp.features(np.abs(dsp.stft(x, spec)), spec), 8)
    fy = dsp.context_windows(dsp.features(np.abs(dsp.stft(y, spec)), spec), 8)
    last_clean = 2000 // spec.hop - 1  # frame i ends at sample (i+1)*hop - 1
    assert np.array_equal(fx[: last_clean + 1], fy[: last_clean + 1])
    assert not np.array_equal(fx[last_clean + 1], fy[last_clean + 1])


def test_context_windows_put_current_frame_last():
    feats = np.arange(12, dtype=np.float32).reshape(4, 3)
    ctx = dsp.context_windows(feats, 3)
    assert ctx.shape == (4, 3, 3)
    assert np.array_equal(ctx[2, :, -1], feats[2]) and np.array_equal(ctx[2, :, 0], feats[0])
    assert np.array_equal(ctx[0, :, 0], np.zeros(3))


def test_magnitude_output_kind_reconstructs_with_noisy_phase(rng):
    spec = preset("paper8k", output_kind="magnitude")
    x = rng.standard_normal(2000)
    X = dsp.stft(x, spec)
    y = dsp.istft(dsp.apply_output(X, np.abs(X), spec), spec, len(x))
    assert np.max(np.abs(y - x)) < 1e-6


def test_band_gain_measures_the_gain_applied_above_a_frequency(rng):
    from runtime.dsp import band_gain

    spec = preset("paper8k")
    x = rng.standard_normal(8000)
    np.testing.assert_allclose(band_gain(x, 0.5 * x, spec, 3000.0), 0.5, atol=1e-9)
    assert np.all(band_gain(np.zeros(8000), np.zeros(8000), spec, 3000.0) == 1.0)
    # a gain that changes halfway shows up around the change, smoothed over a frame
    y = x.copy()
    y[4000:] *= 0.1
    g = band_gain(x, y, spec, 3000.0)
    assert abs(g[1000] - 1.0) < 1e-6 and abs(g[7000] - 0.1) < 1e-6
    with pytest.raises(SpecError):
        band_gain(x, x, spec, 5000.0)
