import numpy as np
import pytest

from runtime import dsp
from runtime.errors import DenoiseError, SpecError
from runtime.spec import preset

#: Both frame paths: numpy alone, and runtime.dsp_kernels' compiled one where numba is installed.
FRAME_PATHS = [pytest.param(False, id="numpy"),
               pytest.param(True, id="compiled", marks=pytest.mark.skipif(
                   not dsp.kernels_available(), reason="numba is not installed (the [fast] extra)"))]


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


def _run_frames(spec, x, mask_fn, compiled=False):
    fp = dsp.FrameProcessor(spec, compiled=compiled)
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


@pytest.mark.parametrize("compiled", FRAME_PATHS)
def test_frame_processor_equals_offline_functions(compiled, rng):
    spec = preset("paper8k", feature_mean=list(rng.normal(size=129)),
                  feature_std=list(rng.uniform(0.5, 2, 129)))
    x = rng.standard_normal(3000) * 0.1
    masks = rng.uniform(0, 1, (dsp.frame_count(len(x), spec), spec.n_bins))
    spectra, feats, ctx, out = _run_frames(spec, x, lambda i: masks[i], compiled)
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


@pytest.mark.parametrize("sub_windows", [None, 8])
def test_wiener_gain_removes_steady_noise_passes_a_tone_and_forgets_old_noise(sub_windows, rng):
    """White noise, a tone from 1.0 to 1.8 s, the noise 20 dB louder from 2 s."""
    spec = preset("paper8k")
    rate, hop = spec.sample_rate, spec.hop
    t = np.arange(4 * rate) / rate
    level = np.where(t < 2.0, 0.01, 0.1)               # the noise gets 20 dB louder at 2 s
    x = rng.standard_normal(len(t)) * level
    tone_bin = 40                                        # 1250 Hz, on a bin centre
    x[(t > 1.0) & (t < 1.8)] += np.sin(2 * np.pi * tone_bin * rate / spec.n_fft * t[(t > 1.0) & (t < 1.8)])
    wiener = dsp.WienerGain(spec, floor_db=-20, sub_windows=sub_windows, warmup_frames=3)
    gains = np.stack([wiener.update(np.abs(f)).copy() for f in dsp.stft(x, spec)])
    frame_t = (np.arange(len(gains)) + 1) * hop / rate   # time of each frame's last sample
    steady = (frame_t > 0.6) & (frame_t < 1.0)
    noise_bins = np.r_[5:30, 50:120]
    assert np.median(gains[steady][:, noise_bins]) < 0.2
    assert gains[(frame_t > 1.2) & (frame_t < 1.7), tone_bin].min() > 0.9
    # right after the jump the louder noise passes (the minimum still remembers the quiet
    # noise); once the window has moved past the jump it is removed again
    assert np.median(gains[(frame_t > 2.05) & (frame_t < 2.3)][:, noise_bins]) > 0.5
    assert np.median(gains[frame_t > 3.7][:, noise_bins]) < 0.2
    assert gains.min() >= 0.1 - 1e-12
    assert np.all(gains[:3] == 1.0)  # the frames with the leading zeros pass untouched


@pytest.mark.parametrize("compiled", FRAME_PATHS)
def test_frame_processor_applies_the_postfilter_factor_to_the_mask(compiled, rng):
    spec = preset("paper8k")
    x = rng.standard_normal(6000) * 0.1
    x[2000:3000] += np.sin(np.arange(1000) * 0.5)
    masks = rng.uniform(0, 1, (dsp.frame_count(len(x), spec), spec.n_bins))
    fp = dsp.FrameProcessor(spec, min_gain=0.05, postfilter=dsp.postfilter_wiener(spec, compiled), compiled=compiled)
    n = dsp.frame_count(len(x), spec)
    padded = np.zeros(n * spec.hop)
    padded[:len(x)] = x
    out = []
    for i in range(n):
        fp.analyze(padded[i * spec.hop:(i + 1) * spec.hop])
        out.append(fp.synthesize(masks[i]).copy())
    ref = dsp.stft(x, spec)
    wiener = dsp.postfilter_wiener(spec, compiled=False)
    g = np.stack([wiener.update(np.abs(f)).copy() for f in ref])
    # the offline gains that training puts in its loss are the stream's, frame for frame
    assert np.max(np.abs(dsp.postfilter_gains(np.abs(ref), spec) - g)) < 1e-6
    # the factor is the square root of the Wiener gain, and it really bites in this signal
    plain = dsp.WienerGain(spec, floor_db=-20, sub_windows=8, warmup_frames=spec.n_fft // spec.hop - 1)
    np.testing.assert_allclose(g ** 2, np.stack([plain.update(np.abs(f)).copy() for f in ref]), rtol=1e-9)
    assert (g < 0.5).mean() > 0.2
    expect = dsp.istft(ref * np.maximum(masks * g, 0.05), spec, len(x))
    L = spec.latency_samples
    assert np.max(np.abs(np.concatenate(out)[L:L + len(x)] - expect)) < 1e-5


@pytest.mark.parametrize("compiled", FRAME_PATHS)
@pytest.mark.parametrize("sub_windows,exponent", [(None, 1.0), (8, 0.5), (4, 0.3), (4, 0.25)])
def test_wiener_gain_in_blocks_equals_frame_by_frame(sub_windows, exponent, compiled, rng):
    """update_block over any split of the frames gives update's gains: slot changes inside
    a block, blocks shorter than the warm-up, one-frame blocks; on both paths, which agree."""
    spec = preset("paper8k")
    mags = np.abs(rng.standard_normal((500, spec.n_bins))) * np.linspace(0.05, 2.0, 500)[:, None]
    frame_wise = dsp.WienerGain(spec, sub_windows=sub_windows, warmup_frames=3, exponent=exponent, compiled=compiled)
    ref = np.stack([frame_wise.update(m).copy() for m in mags])
    numpy_ref = dsp.WienerGain(spec, sub_windows=sub_windows, warmup_frames=3, exponent=exponent, compiled=False)
    assert np.max(np.abs(ref - np.stack([numpy_ref.update(m).copy() for m in mags]))) < 1e-12
    blocked = dsp.WienerGain(spec, sub_windows=sub_windows, warmup_frames=3, exponent=exponent, compiled=compiled)
    out, i = np.zeros_like(mags), 0
    for k in (2, 1, 64, 5, 100, 23, 1, 304):
        blocked.update_block(mags[i:i + k], out[i:i + k])
        i += k
    assert i == len(mags)
    assert np.max(np.abs(out - ref)) < 1e-12
    assert np.all(out[:3] == 1.0)


@pytest.mark.parametrize("compiled", FRAME_PATHS)
@pytest.mark.parametrize("exponent", [0.5, 0.3, 0.25])
def test_wiener_exponent_is_the_power_of_the_plain_gain(exponent, compiled, rng):
    """The square-root shortcuts (0.5, 0.25) and the general power give gain ** exponent."""
    spec = preset("paper8k")
    mags = np.abs(rng.standard_normal((60, spec.n_bins))) * np.linspace(0.05, 2.0, 60)[:, None]
    plain = dsp.WienerGain(spec, exponent=1.0, compiled=compiled)
    raised = dsp.WienerGain(spec, exponent=exponent, compiled=compiled)
    for m in mags:
        g = plain.update(m).copy()
        assert np.max(np.abs(raised.update(m) - g ** exponent)) < 1e-14


@pytest.mark.skipif(not dsp.kernels_available(), reason="numba is not installed (the [fast] extra)")
@pytest.mark.parametrize("output_kind,context,fused", [("mask", 8, True), ("magnitude", 1, True), ("mask", 8, False)])
def test_compiled_frame_path_gives_the_numpy_paths_numbers(output_kind, context, fused, rng):
    """Features, context, magnitude and output of the kernels equal numpy's to rounding,
    with the post-filter and the attenuation limit on, for mask and magnitude outputs; also
    on the unfused kernels (numpy's FFTs between them) that a numpy post-filter leaves."""
    spec = preset("paper8k", output_kind=output_kind, context_frames=context,
                  feature_mean=list(rng.normal(size=129)), feature_std=list(rng.uniform(0.5, 2, 129)))
    paths = [dsp.FrameProcessor(spec, min_gain=0.03, postfilter=dsp.postfilter_wiener(spec, c and fused), compiled=c)
             for c in (False, True)]
    assert [p.compiled for p in paths] == [False, True]
    assert (paths[1]._synthesis_args is not None) == fused
    x = rng.standard_normal(40 * spec.hop) * 0.1
    for i in range(40):
        outputs = []
        model_out = rng.uniform(0, 1.2, spec.n_bins).astype(np.float32)
        for p in paths:
            p.analyze(x[i * spec.hop:(i + 1) * spec.hop])
            outputs.append(p.synthesize(model_out).copy())
        numpy_path, compiled = paths
        assert np.array_equal(numpy_path.context, compiled.context)
        assert np.max(np.abs(numpy_path.magnitude - compiled.magnitude)) < 1e-12
        assert np.max(np.abs(outputs[0] - outputs[1])) < 1e-12


def test_the_compiled_path_follows_the_switch_and_says_what_it_needs(monkeypatch):
    monkeypatch.setenv(dsp.COMPILED_SWITCH, "0")
    assert dsp.compiled_kernels() is None and not dsp.FrameProcessor(preset("paper8k")).compiled
    assert not dsp.WienerGain(preset("paper8k")).compiled
    monkeypatch.delenv(dsp.COMPILED_SWITCH)
    assert (dsp.compiled_kernels() is not None) == dsp.kernels_available()
    monkeypatch.setattr(dsp, "kernels_available", lambda: False)
    assert dsp.compiled_kernels() is None
    with pytest.raises(DenoiseError, match=r"needs numba: pip install"):
        dsp.FrameProcessor(preset("paper8k"), compiled=True)
