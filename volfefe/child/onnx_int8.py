"""Dynamic int8 quantisation of an ONNX graph, shared by the one-graph and layered exports.

Weights become int8 (per tensor); activations are quantised on the fly at run time, so no
calibration is needed. Needs onnx and onnxruntime (the `onnx` extra) at export time only.
"""

from __future__ import annotations

import warnings
from pathlib import Path

OPSET = 17  # the ONNX opset both exports write


def quantize_dynamic_int8(path: Path) -> None:
    """Dynamic per-tensor int8 quantisation of the graph's weights, in place."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_suffix(".int8.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(path),
            str(quantized),
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    quantized.replace(path)
