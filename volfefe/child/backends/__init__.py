"""Inference backends for the child: torch (reference), ONNX Runtime and OpenVINO (no torch)."""
