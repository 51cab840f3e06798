"""worker/classify.py on its own: one-shot from a shell pipe, and the serve protocol by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson

from volfefe.protocol import EXIT_BOOT_FAILED

ROOT = Path(__file__).resolve().parents[2]
WORKER = str(ROOT / "worker" / "classify.py")
SENTIMENTS = {"positive", "negative", "neutral"}


def run_one_shot(model: Path, data: bytes, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, WORKER, "--model", str(model), *extra],
        input=data,
        capture_output=True,
        timeout=120,
    )


def test_one_shot_from_a_shell_pipe(tiny_model: Path) -> None:
    # The way people debug the model by hand: `echo ... | python worker/classify.py`.
    proc = subprocess.run(
        [
            "sh",
            "-c",
            'echo "Stocks rally on good news" | "$0" "$1" --model "$2"',
            sys.executable,
            WORKER,
            str(tiny_model),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    result = json.loads(proc.stdout)
    assert result["sentiment"] in SENTIMENTS
    assert 0.0 <= result["confidence"] <= 1.0
    assert set(result["meta"]["raw_scores"]) == SENTIMENTS
    assert abs(sum(result["meta"]["raw_scores"].values()) - 1.0) < 1e-4
    assert result["meta"]["truncated"] is False and result["meta"]["tokens"] > 2
    assert result["model_version"].startswith(tiny_model.name + "@")
    assert proc.stdout.count(b"\n") == 1  # nothing else on stdout


def test_one_shot_empty_input_is_a_json_error(tiny_model: Path) -> None:
    proc = run_one_shot(tiny_model, b"  \n")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"]["type"] == "NoTextError"


def test_one_shot_invalid_utf8_is_replaced_not_fatal(tiny_model: Path) -> None:
    proc = run_one_shot(tiny_model, b"stocks \xff\xfe rally \x00 today")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sentiment"] in SENTIMENTS


def test_one_shot_bad_model_folder_exits_3_with_json_error(tmp_path: Path) -> None:
    proc = run_one_shot(tmp_path / "missing", b"hello")
    assert proc.returncode == EXIT_BOOT_FAILED
    error = json.loads(proc.stdout)["error"]
    assert error["type"] == "ModelLoadError" and "does not exist" in error["message"]


def test_one_shot_refuses_a_model_with_unmappable_labels(tiny_model: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd"
    odd.mkdir()
    for file in tiny_model.iterdir():
        (odd / file.name).write_bytes(file.read_bytes())
    config = json.loads((odd / "config.json").read_text())
    config["id2label"] = {"0": "bullish", "1": "bearish", "2": "meh"}
    config["label2id"] = {"bullish": 0, "bearish": 1, "meh": 2}
    (odd / "config.json").write_text(json.dumps(config))
    proc = run_one_shot(odd, b"hello")
    assert proc.returncode == EXIT_BOOT_FAILED
    assert "cannot map the model's labels" in json.loads(proc.stdout)["error"]["message"]


def test_one_shot_long_text_is_truncated(tiny_model: Path) -> None:
    proc = run_one_shot(tiny_model, ("stocks rally " * 2000).encode())
    meta = json.loads(proc.stdout)["meta"]
    assert meta["truncated"] is True and meta["tokens"] == 512


def serve(
    tiny_model: Path, lines: list[bytes], fault: str = ""
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if fault:
        env["VOLFEFE_WORKER_FAULT"] = fault
    return subprocess.run(
        [sys.executable, WORKER, "--serve", "--model", str(tiny_model), "--threads", "1"],
        input=b"".join(lines),
        capture_output=True,
        timeout=120,
        env=env,
    )


def test_serve_answers_each_request_and_keeps_going_after_bad_lines(tiny_model: Path) -> None:
    proc = serve(
        tiny_model,
        [
            b'{"id": 1, "texts": ["Stocks rally", "", "   ", "tariffs hurt"]}\n',
            b"this is not json\n",
            b'{"id": 2, "texts": "not a list"}\n',
            b'{"id": 3, "texts": ["oil prices"]}\n',
        ],
    )
    assert proc.returncode == 0, proc.stderr  # EOF on stdin: clean exit
    lines = [orjson.loads(line) for line in proc.stdout.splitlines()]
    ready, r1, bad, r2, r3 = lines
    assert ready["type"] == "ready" and ready["labels"] == ["neutral", "positive", "negative"]
    assert ready["threads"] == 1 and ready["device"] == "cpu" and ready["max_length"] == 512
    assert ready["pid"] > 0 and ready["model_version"]
    assert r1["id"] == 1 and [("error" in item) for item in r1["results"]] == [
        False,
        True,
        True,
        False,
    ]
    assert r1["results"][1]["error"]["type"] == "EmptyText"
    assert bad == {"type": "error", "id": None, "error": bad["error"]}
    assert bad["error"]["type"] == "BadRequest"
    assert r2["type"] == "error" and r2["id"] == 2
    assert r3["id"] == 3 and r3["results"][0]["sentiment"] in SENTIMENTS


def test_stray_prints_never_reach_the_protocol_stream(tiny_model: Path) -> None:
    proc = serve(tiny_model, [b'{"id": 1, "texts": ["a"]}\n'], fault="stdout-noise")
    assert proc.returncode == 0
    assert [orjson.loads(line)["type"] for line in proc.stdout.splitlines()] == ["ready", "result"]
    assert b"stray print" in proc.stderr


def test_serve_handles_odd_texts(tiny_model: Path) -> None:
    texts = ["🚀🚀 stocks 📉", "Die Börse bricht ein", "股市大涨", "a\x00b", "x" * 1_000_000]
    proc = serve(tiny_model, [orjson.dumps({"id": 9, "texts": texts}) + b"\n"])
    reply = orjson.loads(proc.stdout.splitlines()[1])
    assert [item["sentiment"] in SENTIMENTS for item in reply["results"]] == [True] * 5
    assert reply["results"][-1]["truncated"] is True
