import numpy as np
import pytest

from runtime.spec import preset

tf = pytest.importorskip("tensorflow")
from training.models import banded_matrix, cr_ced, crnn, crnn_stream, macs_per_frame  # noqa: E402


def test_cr_ced_has_about_33k_parameters_at_129_bins():
    model = cr_ced(preset("paper8k"))
    assert abs(model.count_params() - 33_000) <= 0.05 * 33_000
    assert model.input_shape == (None, 129, 8, 1) and model.output_shape == (None, 129)
    # ~4 M MACs per frame: every weight is reused at every bin
    assert 3.5e6 < macs_per_frame(model) < 4.5e6


def test_crnn_is_within_the_parameter_budget():
    model = crnn(preset("paper8k", context_frames=1, model_kind="crnn"))
    assert model.count_params() <= 250_000


@pytest.mark.parametrize("kind", ["cr-ced", "crnn"])
def test_mask_for_frame_t_ignores_audio_after_t(kind, rng):
    """Through the real feature path: change the audio from sample 1600 on and the masks
    of every frame that ends before it stay identical; later ones change."""
    from training.enhance import keras_mask
    from training.models import build

    spec = preset("paper8k", model_kind=kind, context_frames=8 if kind == "cr-ced" else 1)
    model = build(kind, spec)
    x = rng.standard_normal(4000) * 0.1
    y = x.copy()
    y[1600:] = rng.standard_normal(2400) * 0.1
    _, mx = keras_mask(model, x, spec)
    _, my = keras_mask(model, y, spec)
    first_changed = 1600 // spec.hop  # frame i ends at sample (i+1)*hop - 1
    assert np.allclose(mx[:first_changed], my[:first_changed], atol=1e-6)
    assert not np.allclose(mx[first_changed], my[first_changed])


def test_crnn_stream_model_shares_weights_and_matches_sequence(rng):
    spec = preset("paper8k", context_frames=1, model_kind="crnn")
    model = crnn(spec)
    stream = crnn_stream(spec, model)
    x = rng.standard_normal((1, 12, 129)).astype(np.float32)
    ref = model(x).numpy()[0]
    h = np.zeros((1, 128), np.float32)
    c = np.zeros((1, 128), np.float32)
    outs = []
    for t in range(12):
        m, h, c = stream([x[:, t:t + 1], h, c])
        outs.append(m.numpy()[0, 0])
    assert np.max(np.abs(np.array(outs) - ref)) < 1e-5


def test_banded_matrix_is_the_same_padded_convolution():
    """x (bins, channels) flattened bin-major, times the matrix, equals the 'same'-padded
    (bins x 1) convolution with one output channel that it unrolls."""
    rng = np.random.default_rng(1)
    bins, channels = 9, 3
    kernel = rng.normal(size=(bins, 1, channels, 1))
    x = rng.normal(size=(bins, channels))
    half = (bins - 1) // 2
    padded = np.pad(x, ((half, half), (0, 0)))
    direct = np.array([np.sum(padded[f:f + bins] * kernel[:, 0, :, 0]) for f in range(bins)])
    np.testing.assert_allclose(x.reshape(-1) @ banded_matrix(kernel), direct, rtol=1e-12)


def test_grown_crnn_computes_what_the_small_one_did_and_its_new_units_can_learn():
    from training.models import grow_crnn

    spec = preset("paper8k", model_kind="crnn", context_frames=1)
    small = crnn(spec, proj=16, units=8)
    for w in small.weights:  # non-trivial BatchNorm statistics and biases too
        w.assign(np.random.default_rng(len(w.name)).uniform(0.05, 0.3, w.shape).astype(np.float32))
    large = crnn(spec, proj=24, units=12)
    grow_crnn(small, large, seed=0)
    x = np.random.default_rng(2).normal(size=(2, 30, spec.n_bins)).astype(np.float32)
    before = small(x).numpy()
    assert np.all(np.isfinite(before)) and before.std() > 1e-3
    np.testing.assert_allclose(large(x).numpy(), before, atol=1e-5)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(large(x) ** 2)
    mask_kernel = large.get_layer("mask").kernel
    grad = tape.gradient(loss, mask_kernel).numpy()
    assert np.abs(grad[8:]).max() > 0  # the new units' outgoing weights start learning
    with pytest.raises(ValueError, match="encoder|grow"):
        grow_crnn(small, crnn(spec, channels=(8, 8), proj=16, units=8))


def test_input_skip_is_added_with_zero_weights_and_then_learns(rng):
    """--from RUN --input-skip: the grown model still computes the run's function (also
    when the LSTM widens at the same time, and when a skip model widens), the skip rows of
    the output layer get gradients, the streaming model matches the sequence model, and a
    skip cannot be taken away."""
    from training.models import grow_crnn

    spec = preset("paper8k", model_kind="crnn", context_frames=1)
    small = crnn(spec, proj=16, units=8)
    for w in small.weights:
        w.assign(np.random.default_rng(len(w.name)).uniform(0.05, 0.3, w.shape).astype(np.float32))
    x = rng.normal(size=(2, 30, spec.n_bins)).astype(np.float32)
    before = small(x).numpy()
    skip = crnn(spec, proj=16, units=12, input_skip=True)
    grow_crnn(small, skip, seed=0)
    np.testing.assert_allclose(skip(x).numpy(), before, atol=1e-5)
    assert skip.get_layer("mask").kernel.shape == (12 + spec.n_bins, spec.n_bins)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((skip(x) - 0.5) ** 2)
    grad = tape.gradient(loss, skip.get_layer("mask").kernel).numpy()
    assert np.abs(grad[12:]).max() > 0

    kernel, bias = skip.get_layer("mask").get_weights()
    kernel[12:] = rng.normal(0, 0.05, kernel[12:].shape)  # as if trained: the skip matters
    skip.get_layer("mask").set_weights([kernel, bias])
    wider = crnn(spec, proj=16, units=16, input_skip=True)
    grow_crnn(skip, wider, seed=1)
    np.testing.assert_allclose(wider(x).numpy(), skip(x).numpy(), atol=1e-5)

    stream = crnn_stream(spec, skip, proj=16, units=12, input_skip=True)
    h = c = np.zeros((1, 12), np.float32)
    outs = []
    for t in range(x.shape[1]):
        m, h, c = stream([x[:1, t:t + 1], h, c])
        outs.append(m.numpy()[0, 0])
    np.testing.assert_allclose(np.array(outs), skip(x[:1]).numpy()[0], atol=1e-5)
    with pytest.raises(ValueError, match="same CRNN graph"):
        grow_crnn(skip, crnn(spec, proj=16, units=12))


def _streamed(stream, x):
    """The one-frame model run over x (1, T, bins) frame by frame from zero states: (T, bins)."""
    states = [np.zeros(t.shape, np.float32) for t in stream.inputs[1:]]
    outs = []
    for t in range(x.shape[1]):
        m, *states = stream([x[:, t:t + 1], *states])
        outs.append(m.numpy()[0, 0])
    return np.array(outs)


def test_second_lstm_is_stacked_with_zero_output_rows_and_then_learns(rng):
    """--from RUN --units2 N: the stacked model still computes the run's function (also with
    the input skip, and when the first LSTM widens at the same time), the second LSTM's
    output rows get gradients, and the four-state streaming model matches the sequence one."""
    from training.models import crnn_state_names, grow_crnn

    spec = preset("paper8k", model_kind="crnn", context_frames=1)
    x = rng.normal(size=(2, 30, spec.n_bins)).astype(np.float32)
    for skip in (False, True):
        small = crnn(spec, proj=16, units=8, input_skip=skip)
        for w in small.weights:
            w.assign(np.random.default_rng(len(w.name)).uniform(0.05, 0.3, w.shape).astype(np.float32))
        before = small(x).numpy()
        for units in (8, 12):
            stacked = crnn(spec, proj=16, units=units, units2=6, input_skip=skip)
            grow_crnn(small, stacked, seed=0)
            np.testing.assert_allclose(stacked(x).numpy(), before, atol=1e-5)
    assert macs_per_frame(stacked) - macs_per_frame(crnn(spec, proj=16, units=12, input_skip=True)) == \
        4 * 6 * (12 + 6) + 6 * spec.n_bins
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((stacked(x) - 0.5) ** 2)
    grad = tape.gradient(loss, stacked.get_layer("mask").kernel).numpy()
    assert np.abs(grad[12:18]).max() > 0

    kernel, bias = stacked.get_layer("mask").get_weights()
    kernel[12:18] = rng.normal(0, 0.3, kernel[12:18].shape)  # as if trained: the second LSTM matters
    stacked.get_layer("mask").set_weights([kernel, bias])
    assert not np.allclose(stacked(x).numpy(), before, atol=1e-3)
    size = dict(proj=16, units=12, units2=6, input_skip=True)
    assert crnn_state_names(size) == ["h", "c", "h2", "c2"] and crnn_state_names({}) == ["h", "c"]
    stream = crnn_stream(spec, stacked, **size)
    assert [tuple(t.shape) for t in stream.inputs[1:]] == [(1, 12)] * 2 + [(1, 6)] * 2
    np.testing.assert_allclose(_streamed(stream, x[:1]), stacked(x[:1]).numpy()[0], atol=1e-5)
    with pytest.raises(ValueError, match="second LSTM"):
        grow_crnn(stacked, crnn(spec, proj=16, units=12, units2=8, input_skip=True))
    with pytest.raises(ValueError, match="same CRNN graph"):
        grow_crnn(stacked, crnn(spec, proj=16, units=12, input_skip=True))


def test_pooled_bands_keep_low_bins_and_average_widening_bands_above():
    from training.models import pooled_bands

    for name, expected in (("paper8k", 33 + 16 + 16), ("wide16k", 33 + 16 + 16 + 16)):
        spec = preset(name, model_kind="crnn", context_frames=1)
        pool = pooled_bands(spec, 1000.0)
        assert pool.shape == (spec.n_bins, expected)
        assert np.all((pool > 0).sum(axis=1) == 1)             # every bin in exactly one band
        np.testing.assert_allclose(pool.sum(axis=0), 1.0, rtol=1e-6)  # each band an average
        np.testing.assert_array_equal(pool[:33, :33], np.eye(33))      # up to 1 kHz: the bins
        widths = (pool > 0).sum(axis=0)
        assert list(widths[33:35]) == [2, 2] and widths[-1] == (8 if name == "wide16k" else 4)


def test_pooled_crnn_is_cheaper_streams_as_it_trains_and_takes_a_trained_back_end(rng):
    """--pool-above: fewer MACs, the pooling fixed and untrained, the streaming model equal
    to the sequence model; keep_back_end carries the LSTM and output layer over and leaves
    the encoder as initialised."""
    from training.models import keep_back_end, macs_per_frame

    spec = preset("paper8k", model_kind="crnn", context_frames=1)
    full = crnn(spec, proj=16, units=8)
    for w in full.weights:
        w.assign(np.random.default_rng(len(w.name)).uniform(0.05, 0.3, w.shape).astype(np.float32))
    pooled = crnn(spec, proj=16, units=8, pool_above_hz=1000.0)
    assert macs_per_frame(pooled) < macs_per_frame(full)
    assert not pooled.get_layer("pool_bands").trainable_weights
    before = pooled.get_layer("enc0_conv").get_weights()[0].copy()
    keep_back_end(full, pooled)
    for name in ("lstm", "mask"):
        for a, b in zip(full.get_layer(name).get_weights(), pooled.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pooled.get_layer("enc0_conv").get_weights()[0], before)
    with pytest.raises(ValueError, match="back ends differ"):
        keep_back_end(full, crnn(spec, proj=16, units=12, pool_above_hz=1000.0))

    x = rng.normal(size=(1, 20, spec.n_bins)).astype(np.float32)
    stream = crnn_stream(spec, pooled, proj=16, units=8, pool_above_hz=1000.0)
    h = c = np.zeros((1, 8), np.float32)
    outs = []
    for t in range(x.shape[1]):
        m, h, c = stream([x[:, t:t + 1], h, c])
        outs.append(m.numpy()[0, 0])
    np.testing.assert_allclose(np.array(outs), pooled(x).numpy()[0], atol=1e-5)


def test_lookahead_is_grown_with_zero_weights_keeps_the_function_a_frame_later_and_streams(rng):
    """--from RUN --lookahead 1: the grown model's output at t is the run's output at t - 1
    (the newest frame's projection rows start at zero; the delay line starts empty: one zero
    encoder frame before the signal), those rows get gradients, the mask
    at t now depends on frame t + 1 but on nothing later, and the streaming model with
    its "look" delay line matches the sequence model."""
    from training.models import crnn_state_names, encoder_width, grow_crnn

    spec = preset("paper8k", model_kind="crnn", context_frames=1)
    x = rng.normal(size=(2, 30, spec.n_bins)).astype(np.float32)
    small = crnn(spec, proj=16, units=8, units2=6)
    for w in small.weights:
        w.assign(np.random.default_rng(len(w.name)).uniform(0.05, 0.3, w.shape).astype(np.float32))
    size = dict(proj=16, units=8, units2=6, lookahead=1)
    ahead = crnn(spec.replace(lookahead_frames=1), **size)
    grow_crnn(small, ahead, seed=0)
    # the run's function a frame later, after one zero encoder frame: the run's own layers
    # on its encoder output delayed by a frame
    import tf_keras as keras

    enc = keras.Model(small.input, small.get_layer("flatten_freq").output)(x).numpy()
    delayed = np.concatenate([np.zeros_like(enc[:, :1]), enc[:, :-1]], axis=1)
    first = small.get_layer("lstm")(small.get_layer("proj")(delayed))[0]
    second = small.get_layer("lstm2")(first)[0]
    want = small.get_layer("mask")(tf.concat([first, second], -1)).numpy()
    np.testing.assert_allclose(ahead(x).numpy(), want, atol=1e-5)
    np.testing.assert_allclose(ahead(x).numpy()[:, 1:], small(x).numpy()[:, :-1], atol=0.3)
    width = encoder_width(spec, channels=(16, 16))
    assert ahead.get_layer("proj").kernel.shape == (2 * width, 16)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((ahead(x) - 0.5) ** 2)
    grad = tape.gradient(loss, ahead.get_layer("proj").kernel).numpy()
    assert np.abs(grad[width:]).max() > 0
    fresh = crnn(spec.replace(lookahead_frames=1), **size)  # Keras' initialisation: unsaturated
    y = x.copy()
    y[:, 12:] += 1.0  # frames 12 on change: the outputs for frames up to 10 keep, 11's changes
    mx, my = fresh(x).numpy(), fresh(y).numpy()
    np.testing.assert_allclose(mx[:, :12], my[:, :12], atol=1e-6)  # output t is for frame t - 1
    assert not np.allclose(mx[:, 12], my[:, 12], atol=1e-4)
    assert crnn_state_names(size) == ["h", "c", "h2", "c2", "look"]
    stream = crnn_stream(spec, fresh, **size)
    assert stream.inputs[-1].shape == (1, width)
    np.testing.assert_allclose(_streamed(stream, x[:1]), fresh(x[:1]).numpy()[0], atol=1e-5)
    with pytest.raises(ValueError, match="input skip"):
        crnn(spec, input_skip=True, lookahead=1)
