"""What runs inside a child process: the entry point, the inference engine, the backends, the
exports (ONNX, OpenVINO with calibration and the accuracy guard), weight digests and the
test-only fault switch.

The child imports `volfefe.protocol` and its own modules only, never the supervisor, the
store, the jobs or the command line, so it starts fast and a fault in it stays in it.
"""
