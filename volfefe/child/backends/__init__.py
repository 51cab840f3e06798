"""Inference backends for the child: torch (reference) and ONNX Runtime (no torch)."""
