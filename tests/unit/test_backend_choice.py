"""Which backend `auto` means, and the settings of the guarded schemes and their guard."""

from __future__ import annotations

import importlib.util

import pytest

from volfefe import ConfigError, Settings
from volfefe.config import ONNX_MODULES, OPENVINO_MODULES

HAS_OPENVINO = all(importlib.util.find_spec(m) for m in OPENVINO_MODULES)
HAS_ONNX = all(importlib.util.find_spec(m) for m in ONNX_MODULES)


@pytest.mark.skipif(not (HAS_OPENVINO and HAS_ONNX), reason="needs both extras (the dev install)")
@pytest.mark.parametrize(
    "quantize, expected",
    [
        ("none", "openvino"),
        ("int8", "onnx"),
        ("int8-static", "openvino"),
        ("bf16", "openvino"),
        ("int8-static-bf16", "openvino"),
    ],
)
def test_auto_picks_the_fastest_installed_backend_for_the_quantisation(
    quantize: str, expected: str
) -> None:
    assert Settings(quantize=quantize).resolved_backend == expected
    assert Settings(quantize="none", device="cuda").resolved_backend == "torch"


@pytest.mark.parametrize("backend", ["torch", "onnx"])
@pytest.mark.parametrize("scheme", ["int8-static", "bf16", "int8-static-bf16"])
def test_guarded_schemes_need_openvino(backend: str, scheme: str) -> None:
    with pytest.raises(ConfigError, match=f"{scheme} needs the openvino backend"):
        Settings(backend=backend, quantize=scheme)


@pytest.mark.parametrize(
    "var, value, message",
    [
        ("VOLFEFE_GUARD_MIN_AGREEMENT", "1.5", "guard_min_agreement must be between 0 and 1"),
        ("VOLFEFE_GUARD_MAX_DP", "-0.1", "guard_max_dp must be between 0 and 1"),
        ("VOLFEFE_GUARD_SIZE", "0", "guard_size must be >= 1"),
        ("VOLFEFE_CALIBRATION_SIZE", "0", "calibration_size must be >= 1"),
        (
            "VOLFEFE_QUANTIZE",
            "int4",
            "quantize must be one of none, int8, int8-static, bf16, int8-static-bf16",
        ),
        ("VOLFEFE_BACKEND", "tensorrt", "backend must be one of auto, torch, onnx, openvino"),
    ],
)
def test_bad_values_are_refused_with_a_specific_message(var: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({var: value})


def test_guard_settings_from_the_environment() -> None:
    s = Settings.from_env({"VOLFEFE_GUARD_MIN_AGREEMENT": "0.99", "VOLFEFE_GUARD_MAX_DP": "0.05"})
    assert (s.guard_min_agreement, s.guard_max_dp) == (0.99, 0.05)
    assert (Settings().guard_min_agreement, Settings().guard_max_dp) == (0.97, 0.2)


@pytest.mark.parametrize("scheme", ["int8-static", "bf16"])
def test_guarded_schemes_run_on_the_cpu_only(scheme: str) -> None:
    with pytest.raises(ConfigError, match=f"{scheme} runs on the CPU only"):
        Settings(quantize=scheme, device="cuda")


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_an_accelerator_with_a_cpu_only_backend_is_a_config_error(backend: str) -> None:
    with pytest.raises(ConfigError, match=f"cuda needs the torch backend: {backend} runs on"):
        Settings(backend=backend, device="cuda")
    assert Settings(backend=backend, device="cpu").device == "cpu"
