"""`python -m volfefe predict` as a user runs it: a subprocess, no database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SENTIMENTS = {"positive", "negative", "neutral"}


def volfefe(
    *args: str, model: Path | None, stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "VOLFEFE_WORKERS": "1", **(env or {})}
    if model is not None:
        full_env["VOLFEFE_MODEL"] = str(model)
    return subprocess.run(
        [sys.executable, "-m", "volfefe", *args],
        input=stdin,
        capture_output=True,
        timeout=180,
        env=full_env,
    )


def test_predict_texts_prints_one_json_line_each(tiny_model: Path) -> None:
    proc = volfefe(
        "predict", "Stocks rally on good news", "Tariffs crush markets", model=tiny_model
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 2 and all(line["sentiment"] in SENTIMENTS for line in lines)
    assert all(set(line["meta"]) == {"raw_scores", "truncated", "tokens"} for line in lines)


def test_predict_stdin_one_text_per_line_with_bad_lines(tiny_model: Path) -> None:
    proc = volfefe(
        "predict",
        "-",
        model=tiny_model,
        stdin=b"stocks rally\n\n\xff\xfe invalid utf8\n\xf0\x9f\x9a\x80 moon\n",
    )
    assert proc.returncode == 1  # the empty line failed; the others still got results
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [("error" in line) for line in lines] == [False, True, False, False]
    assert lines[1]["error"]["type"] == "NoTextError"


def test_bad_setting_is_a_config_error_exit_2(tiny_model: Path) -> None:
    proc = volfefe("predict", "x", model=tiny_model, env={"VOLFEFE_CALL_TIMEOUT": "-1"})
    assert proc.returncode == 2
    assert proc.stderr.decode() == (
        "ConfigError: VOLFEFE_CALL_TIMEOUT='-1': call_timeout must be > 0, got -1.0\n"
    )


def test_model_that_cannot_load_says_what_to_do(tmp_path: Path) -> None:
    # A model that can never load is a configuration error (exit 2), not a broken pool.
    proc = volfefe("predict", "x", model=tmp_path / "no-such-model")
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "ConfigError" in err and "does not exist" in err


def test_hub_model_without_network_names_volfefe_model() -> None:
    proc = volfefe("predict", "x", model=None, env={"VOLFEFE_MODEL": ""})
    assert proc.returncode == 3  # ModelUnavailable: the hub cannot be reached
    assert "VOLFEFE_MODEL" in proc.stderr.decode()


def test_every_global_option_reaches_the_children(tiny_model: Path) -> None:
    proc = volfefe(
        *("--model", str(tiny_model), "--revision", "main", "--workers", "2", "--threads", "1"),
        *("--device", "cpu", "--call-timeout", "20", "--boot-timeout", "90"),
        *("--backend", "torch", "--quantize", "int8", "-v", "predict", "stocks rally"),
        model=None,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["model_version"].startswith(tiny_model.name + "@")
    assert result["model_version"].endswith("+int8")  # --quantize and --backend torch
    err = proc.stderr.decode()
    # --workers 2: both children start (one text may be answered before the second is ready)
    assert "starting 2 children" in err, err  # the pool's INFO line (-v)
    ready = [line for line in err.splitlines() if " ready: " in line]  # -v: INFO lines
    assert ready, err
    assert all("(cpu, 1 threads)" in line for line in ready), ready  # --device, --threads
