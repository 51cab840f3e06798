"""Model provisioning against a stand-in for the Hugging Face hub on 127.0.0.1.

The stand-in serves the tiny model's files the way huggingface_hub asks for them
(`/api/models/{repo}/revision/{rev}` for the commit and file list, `HEAD`/`GET
/{repo}/resolve/{rev}/{file}` for each file), slowly: the whole download takes longer than the
children's boot timeout, which must not matter because the children only load from the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = "volfefe-test/tiny-finbert"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
BOOT_TIMEOUT = 15.0  # seconds; the slow download below takes longer than this
DEADLINE = 240.0


class StandInHub:
    """A tiny hub: one repository, one commit, files served with `delay` seconds per file."""

    def __init__(self, folder: Path, delay: float) -> None:
        self.files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        self.delay = delay
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                hub.requests.append(f"{self.command} {self.path}")

            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def _answer(self, body: bool) -> None:
                path = self.path.split("?")[0]
                if path.startswith(f"/api/models/{REPO}/revision/"):
                    info = {
                        "id": REPO,
                        "sha": COMMIT,
                        "siblings": [{"rfilename": name} for name in hub.files],
                    }
                    self._send(
                        200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body
                    )
                    return
                if path.startswith(f"/api/models/{REPO}/tree/"):  # transformers lists folders
                    self._send(200, b"[]", {"Content-Type": "application/json"}, body)
                    return
                prefix = f"/{REPO}/resolve/"
                if not path.startswith(prefix):
                    self._send(404, b"{}", {"X-Error-Code": "RepoNotFound"}, body)
                    return
                name = path[len(prefix) :].split("/", 1)[1]
                data = hub.files.get(name)
                if data is None:
                    self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, body)
                    return
                headers = {
                    "X-Repo-Commit": COMMIT,
                    "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                    "Content-Type": "application/octet-stream",
                }
                self._send(200, data, headers, body, slow=body)

            def _send(
                self,
                code: int,
                data: bytes,
                headers: dict[str, str],
                body: bool,
                slow: bool = False,
            ) -> None:
                self.send_response(code)
                for key, value in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(key, value)
                self.end_headers()
                if not body:
                    return
                half = len(data) // 2
                self.wfile.write(data[:half])
                self.wfile.flush()
                if slow:
                    time.sleep(hub.delay)  # a slow link: the rest of the file comes later
                self.wfile.write(data[half:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_hub(tiny_model: Path) -> Iterator[StandInHub]:
    files = [p for p in tiny_model.iterdir() if p.is_file()]
    hub = StandInHub(tiny_model, delay=(BOOT_TIMEOUT + 3) / len(files))
    yield hub
    hub.close()


def env_for(hub_url: str, hf_home: Path) -> dict[str, str]:
    """A user's environment: online (through the stand-in), an empty HF cache."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") and not k.startswith("VOLFEFE_")
    }
    env.update(
        {
            "HF_ENDPOINT": hub_url,
            "HF_HOME": str(hf_home),
            "VOLFEFE_MODEL": REPO,
            "VOLFEFE_WORKERS": "1",
            "VOLFEFE_BACKEND": "torch",
            "VOLFEFE_BOOT_TIMEOUT": str(BOOT_TIMEOUT),
        }
    )
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "volfefe", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )


def test_a_download_slower_than_the_boot_timeout_succeeds_on_the_first_run(
    slow_hub: StandInHub, tmp_path: Path
) -> None:
    env = env_for(slow_hub.url, tmp_path / "hf")
    started = time.monotonic()
    proc = run(env, "predict", "stocks rally")
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert took > BOOT_TIMEOUT  # the download alone is longer than a child may take to boot
    result = json.loads(proc.stdout)
    assert result["model_version"] == f"{REPO}@{COMMIT[:12]}"  # the revision, as its commit
    assert f"GET /api/models/{REPO}/revision/main" in slow_hub.requests
    downloads = [r for r in slow_hub.requests if r.startswith(f"GET /{REPO}/resolve/{COMMIT}/")]
    assert sorted(r.rsplit("/", 1)[1] for r in downloads) == sorted(slow_hub.files)
    assert f"pulling {REPO}@{COMMIT[:12]}: config.json (" in proc.stderr  # progress, per file

    slow_hub.requests.clear()
    pulled = run(env, "-q", "model", "pull")  # cached now: the files are not fetched again
    assert pulled.returncode == 0, pulled.stderr
    folder = Path(pulled.stdout.strip())
    assert folder.name == COMMIT and sorted(p.name for p in folder.iterdir()) == sorted(
        slow_hub.files
    )
    assert not [r for r in slow_hub.requests if r.startswith("GET /" + REPO)]


def test_an_unreachable_hub_fails_fast_and_says_what_to_do(tmp_path: Path) -> None:
    env = env_for("http://127.0.0.1:1", tmp_path / "hf")  # nothing listens on port 1
    started = time.monotonic()
    proc = run(env, "predict", "stocks rally")
    assert proc.returncode == 3, proc.stderr
    assert time.monotonic() - started < 30  # no boot attempts, no retries: the import and one try
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ModelUnavailable: cannot load model '{REPO}': the hub at ")
    assert "VOLFEFE_MODEL" in last and "volfefe model pull" in last


WORKER = Path(__file__).resolve().parents[2] / "worker" / "classify.py"


def child_alone(env: dict[str, str], text: str) -> subprocess.CompletedProcess[str]:
    """`echo TEXT | python worker/classify.py` as a person debugging a model runs it."""
    return subprocess.run(
        [sys.executable, str(WORKER)],
        input=text,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )


def test_the_child_alone_fails_fast_on_an_unreachable_hub(tmp_path: Path) -> None:
    env = env_for("http://127.0.0.1:9", tmp_path / "hf")  # nothing listens on port 9
    proc = child_alone(env, "Stocks rally")
    assert proc.returncode == 3, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["type"] == "ModelUnavailable"
    assert error["message"].startswith(f"cannot load model '{REPO}': the hub at ")
    assert "VOLFEFE_MODEL" in error["message"] and "volfefe model pull" in error["message"]
    assert "Retrying" not in proc.stderr  # one question to the hub, not a minute of retries


def test_the_child_alone_downloads_then_loads_from_the_cache_offline(
    tiny_model: Path, tmp_path: Path
) -> None:
    hub = StandInHub(tiny_model, delay=0)
    try:
        online = child_alone(env_for(hub.url, tmp_path / "hf"), "Stocks rally")
    finally:
        hub.close()
    assert online.returncode == 0, online.stderr
    assert json.loads(online.stdout)["sentiment"] in {"positive", "negative", "neutral"}
    offline = child_alone(env_for("http://127.0.0.1:9", tmp_path / "hf"), "Stocks rally")
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout) == json.loads(online.stdout)
    assert "Retrying" not in offline.stderr
