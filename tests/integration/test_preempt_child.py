"""A real child with --preempt layers: a short request sent after a long one is answered first."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from volfefe.child.export import ensure_export
from volfefe.child.faults import FAULT_VAR
from volfefe.child.preempt import PAUSE_LIMIT

LONG = "fed " * 300  # 302 tokens: a long pass (two of them still fit one pipe write)
SHORT = "stocks rally"


def serve(
    model: Path, preempt: str, lines: list[dict[str, Any]], fault: str | None = None
) -> list[Any]:
    """Start a child, write `lines` in one write, and return its replies in arrival order
    (exports go to the session's VOLFEFE_EXPORT_CACHE; `fault`: VOLFEFE_WORKER_FAULT)."""
    argv = [sys.executable, "-m", "volfefe.child", "--serve", "--model", str(model)]
    argv += ["--backend", "onnx", "--threads", "1", "--preempt", preempt]
    env = {**os.environ, FAULT_VAR: fault} if fault else None
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert "model_version" in orjson.loads(proc.stdout.readline())  # the ready line
            data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
            assert len(data) < 4096  # one write a pipe delivers whole (PIPE_BUF): one read
            proc.stdin.write(data)
            proc.stdin.flush()
            replies = [orjson.loads(proc.stdout.readline()) for _ in lines]
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0
            return replies
        finally:
            proc.kill()


def test_a_short_request_overtakes_a_long_one(tiny_model: Path) -> None:
    lines = [{"id": 1, "texts": [LONG]}, {"id": 2, "texts": [SHORT]}]
    preempted = serve(tiny_model, "layers", lines)
    assert [r["id"] for r in preempted] == [2, 1]
    in_order = serve(tiny_model, "off", lines)
    assert [r["id"] for r in in_order] == [1, 2]
    by_id = {r["id"]: r["results"][0] for r in in_order}
    for reply in preempted:
        got, expected = reply["results"][0], by_id[reply["id"]]
        assert got["sentiment"] == expected["sentiment"]
        assert got["tokens"] == expected["tokens"] and got["truncated"] == expected["truncated"]
        for label, score in expected["raw_scores"].items():
            assert abs(got["raw_scores"][label] - score) <= 1e-5


def test_pings_and_bad_lines_overtake_too_and_order_holds_among_equals(tiny_model: Path) -> None:
    lines: list[dict[str, Any]] = [
        {"id": 1, "texts": [LONG]},
        {"id": 2, "texts": [LONG]},
        {"id": 3, "texts": []},  # a ping
        {"id": 4},  # not a request: no texts
        {"id": 5, "texts": [SHORT]},
    ]
    replies = serve(tiny_model, "layers", lines)
    assert [r["id"] for r in replies] == [3, 4, 5, 1, 2]
    assert replies[1]["error"]["type"] == "BadRequest"
    assert replies[0]["results"] == []


def test_a_long_request_moves_on_once_a_pause_has_lasted_its_limit(tiny_model: Path) -> None:
    # Short requests stream in faster than the child answers them (each sleeps a little
    # longer, by the fault switch, than the gap between two): a pause would never end by
    # itself, since it also runs what arrives meanwhile. It ends at PAUSE_LIMIT, so the long
    # request (3 pauses in the tiny model) is answered while the short ones still come.
    shorts = 48
    argv = [sys.executable, "-m", "volfefe.child", "--serve", "--model", str(tiny_model)]
    argv += ["--backend", "onnx", "--threads", "1", "--preempt", "layers"]
    env = {**os.environ, FAULT_VAR: f"delay={PAUSE_LIMIT * 0.6}"}
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        stdin = proc.stdin

        def stream() -> None:
            for n in range(shorts + 1):
                stdin.write(orjson.dumps({"id": n, "texts": [LONG if n == 0 else SHORT]}) + b"\n")
                stdin.flush()
                time.sleep(PAUSE_LIMIT / 2)  # the arrivals' pace is what the test is about

        try:
            assert "model_version" in orjson.loads(proc.stdout.readline())  # the ready line
            writer = threading.Thread(target=stream)
            writer.start()
            order = [orjson.loads(proc.stdout.readline())["id"] for _ in range(shorts + 1)]
            writer.join()
            stdin.close()
            assert proc.wait(timeout=60) == 0
        finally:
            proc.kill()
    assert sorted(order) == list(range(shorts + 1))
    assert order.index(0) < shorts // 2, order


def test_the_preempting_child_never_imports_torch(tiny_model: Path, tmp_path: Path) -> None:
    folder = ensure_export(tmp_path, str(tiny_model), None, "none", "onnx-layered")
    proc = subprocess.run(
        [
            *(sys.executable, "-X", "importtime", "-m", "volfefe.child", "--serve"),
            *("--backend", "onnx", "--export-dir", str(folder), "--preempt", "layers"),
        ],
        input=b'{"id": 1, "texts": ["stocks rally"]}\n',
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [orjson.loads(line)["type"] for line in proc.stdout.splitlines()] == ["ready", "result"]
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert {"onnxruntime", "volfefe.child.preempt"} <= imported
    assert not {m for m in imported if m == "torch" or m.startswith(("torch.", "transformers"))}


def test_preempting_needs_the_onnx_backend(tiny_model: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "volfefe.child", "--serve", "--model", str(tiny_model)),
            *("--backend", "torch", "--preempt", "layers", "--export-cache", str(tmp_path)),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 3
    assert b"--preempt layers needs the onnx backend" in proc.stderr


@pytest.mark.parametrize("preempt", ["off", "layers"])
def test_eof_ends_the_child_after_its_replies(tiny_model: Path, preempt: str) -> None:
    replies = serve(tiny_model, preempt, [{"id": 7, "texts": [SHORT, ""]}])
    assert replies[0]["id"] == 7
    assert [("error" in item) for item in replies[0]["results"]] == [False, True]
