"""What the one-graph and the layered ONNX exports share: the exporter's modules, the
opset, and dynamic int8 quantisation.

Dynamic int8: weights become int8 (per tensor); activations are quantised on the fly at run
time, so no calibration is needed. Needs onnx and onnxruntime (the `onnx` extra) at export
time only.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType

from volfefe.child.engine import ModelLoadError

OPSET = 17  # the ONNX opset both exports write


def exporter_modules() -> tuple[ModuleType, ModuleType]:
    """torch and onnxruntime's transformer optimizer, which an ONNX export needs (with the
    onnx package); ModelLoadError naming the onnx extra when one is missing."""
    try:
        import onnx  # noqa: F401 - the exporter needs it; say so clearly when missing
        import torch
        from onnxruntime.transformers import optimizer
    except ImportError as exc:
        raise ModelLoadError(
            f"exporting to ONNX needs the onnx extra ({exc.name} is missing): "
            "pip install 'volfefe[onnx]', or set VOLFEFE_BACKEND=torch"
        ) from exc
    return torch, optimizer


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
