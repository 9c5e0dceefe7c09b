"""The model's I/O ports: int8 (de)quantisation and how recurrent states pass from one frame
to the next without leaving their type."""
import numpy as np

from runtime.model_file import _Port, _requantize_table


def _port(scale, zero, dtype=np.int8, shape=(1, 6)):
    return _Port({"index": 0, "shape": np.array(shape), "dtype": dtype, "quantization": (scale, zero)})


def test_dequantize_does_not_wrap_around_in_int8():
    port = _port(0.5, 100)
    raw = np.array([[-128, -50, 0, 27, 100, 127]], np.int8)
    got = port.dequantize(raw, np.zeros((1, 6), np.float32))
    assert np.array_equal(got, (raw.astype(np.float64) - 100) * 0.5)  # -114, not a wrapped +14


def test_quantize_rounds_clips_and_inverts_dequantize():
    port = _port(0.1, -3)
    values = np.array([[-100.0, -1.24, -0.07, 0.0, 1.26, 100.0]], np.float32)
    q = port.quantize(values, np.zeros((1, 6), np.int8))
    assert q.tolist() == [[-128, -15, -4, -3, 10, 127]]
    back = port.dequantize(q, np.zeros((1, 6), np.float32))
    assert np.all(np.abs(back[:, 1:-1] - values[:, 1:-1]) <= 0.05 + 1e-6)


def test_states_pass_as_they_are_on_one_scale_and_through_a_table_otherwise():
    assert _requantize_table(_port(0.1, 2), _port(0.1, 2)) is None
    assert _requantize_table(_port(0.0, 0, np.float32), _port(0.0, 0, np.float32)) is None
    source, target = _port(0.02, -10), _port(0.05, 7)
    table = _requantize_table(source, target)
    raw = np.arange(-128, 128, dtype=np.int8).reshape(1, -1)
    wide_source, wide_target = _port(0.02, -10, shape=(1, 256)), _port(0.05, 7, shape=(1, 256))
    expect = wide_target.quantize(wide_source.dequantize(raw, np.zeros((1, 256), np.float32)),
                                  np.zeros((1, 256), np.int8))
    assert np.array_equal(np.take(table, raw.view(np.uint8)), expect)
