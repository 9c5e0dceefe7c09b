"""What is inside a .tflite: its real op list (no delegate folding) and whether it is all int8."""
from __future__ import annotations

from collections import Counter

import numpy as np

from runtime.model_file import make_interpreter

#: Ops that only move data or change the number format; they are not "compute".
NON_COMPUTE = {"QUANTIZE", "DEQUANTIZE", "RESHAPE", "PAD", "SQUEEZE", "EXPAND_DIMS",
               "STRIDED_SLICE", "SLICE", "SPLIT", "CONCATENATION", "GATHER", "TRANSPOSE"}

#: Ops that carry the model's weights and nearly all of its multiply-accumulates.
WEIGHT_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "UNIDIRECTIONAL_SEQUENCE_LSTM"}


def op_details(path) -> list[dict]:
    interp, _ = make_interpreter(path, raw_ops=True)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = []
    for op in interp._get_ops_details():  # the public API has no op list yet
        dtypes = [np.dtype(tensors[i]["dtype"]).name for i in op["inputs"] if i >= 0 and i in tensors]
        ops.append({"op": op["op_name"], "input_dtypes": dtypes})
    return ops


def summary(path) -> dict:
    """Op counts, the compute ops whose first input is not int8, and whether every
    weight-carrying op (convolutions, matrix products) runs on int8."""
    ops = op_details(path)
    not_int8 = sorted({o["op"] for o in ops if o["op"] not in NON_COMPUTE
                       and (not o["input_dtypes"] or o["input_dtypes"][0] != "int8")})
    return {"ops": dict(Counter(o["op"] for o in ops)), "non_int8_compute_ops": not_int8,
            "all_compute_int8": not not_int8,
            "weight_ops_int8": not set(not_int8) & WEIGHT_OPS}
