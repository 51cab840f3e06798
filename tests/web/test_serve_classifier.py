"""The classifier behind `volfefe serve`, as users meet it: its children start before the
port opens, a broken pool is rebuilt by the Classifier itself (503 + Retry-After meanwhile),
and /readyz says what a classify call would meet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import eventually
from tests.web.conftest import SERVE_ENV, TOKEN, Serve, free_port

pytestmark = pytest.mark.db

START_TIMEOUT = 180.0  # seconds: a child that fails to load still imports torch first
TINY_LABELS = {"positive", "negative", "neutral"}


def unloadable_copy(tiny_model: Path, folder: Path) -> Path:
    """A copy of the tiny model whose config.json no child can read."""
    model = folder / "unloadable-model"
    shutil.copytree(tiny_model, model)
    (model / "config.json").write_text("{this is not json")
    return model


@pytest.mark.parametrize(
    "cause, status, error",
    [
        ("boot-fail", 2, "ConfigError: the children cannot start"),
        ("model-cannot-load", 2, "ConfigError: the children cannot start"),
        ("boot-hang", 3, "PoolBroken: the worker pool stopped restarting children"),
    ],
)
def test_serve_stops_at_start_when_no_child_gets_ready(
    cause: str, status: int, error: str, tiny_model: Path, tmp_path: Path, web_database_url: str
) -> None:
    env = {
        **os.environ,
        **SERVE_ENV,
        "DATABASE_URL": web_database_url,
        "VOLFEFE_API_TOKEN": TOKEN,
        "VOLFEFE_MODEL": str(tiny_model),
    }
    if cause == "model-cannot-load":
        env["VOLFEFE_MODEL"] = str(unloadable_copy(tiny_model, tmp_path))
    else:
        env["VOLFEFE_WORKER_FAULT"] = cause
    if cause == "boot-hang":  # no ready line in time, again and again: not a ConfigError
        env.update(VOLFEFE_BOOT_TIMEOUT="1", VOLFEFE_MAX_RESTARTS="1")
    argv = [sys.executable, "-m", "volfefe", "serve", "--port", str(free_port()), "--with-worker"]
    proc = subprocess.run(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    assert proc.returncode == status, proc.stderr
    # `TypeName: message` like every command (the message ends with the child's stderr tail)
    assert "\n" + error in "\n" + proc.stderr, proc.stderr
    output = proc.stdout + proc.stderr
    assert "Uvicorn running" not in output  # it never listened
    assert "starting a job worker" not in output  # nor started a worker for nothing


def test_a_broken_pool_answers_503_with_retry_after_until_the_classifier_rebuilds_it(
    serve: Serve, web_database_url: str, tmp_path: Path
) -> None:
    # A restart budget of zero: the first child's crash breaks the pool once its text passed
    # on a fresh child (the fault was not the text's); only that child crashes (FAULT_ONCE),
    # so the rebuilt pool works.
    site = serve(
        web_database_url,
        VOLFEFE_MAX_RESTARTS="0",
        VOLFEFE_WORKER_FAULT="crash@1",
        VOLFEFE_WORKER_FAULT_ONCE=str(tmp_path / "crashed-once"),
        VOLFEFE_REBUILD_BACKOFF="3",
    )
    with site.client(TOKEN) as client:
        response = client.post("/api/v1/classify", json={"texts": ["Stocks"]})
        assert response.status_code == 200, response.text  # answered by a fresh child
        response = client.post("/api/v1/classify", json={"texts": ["Stocks"]})
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"]["type"] == "PoolBroken"

        readyz = client.get("/readyz")  # broken, or the rebuilt pool is still booting
        assert readyz.status_code == 503 and readyz.headers["retry-after"]
        classifier = readyz.json()["checks"]["classifier"]
        assert classifier.startswith(("PoolBroken: ", "starting")), classifier

        site.wait_ready()  # the Classifier rebuilt its pool by itself
        response = client.post("/api/v1/classify", json={"texts": ["Stocks"]})
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["sentiment"] in TINY_LABELS

        pool = client.get("/api/v1/stats").json()["pool"]
        assert pool["rebuilds"] == 1
        assert pool["calls"] >= 2  # the broken pool's call still counts: totals never go back
        assert "volfefe_classifier_rebuilds_total 1.0" in client.get("/metrics").text
        assert "pool rebuilds: 1" in client.get("/").text  # the dashboard, without JavaScript
    assert site.stop() == 0


def test_readyz_and_classify_report_a_model_that_can_no_longer_load(
    serve: Serve, web_database_url: str, tiny_model: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    site = serve(
        web_database_url,
        VOLFEFE_MODEL=str(model),
        VOLFEFE_BACKEND="torch",  # a torch child reads the model folder at each boot
        VOLFEFE_WORKER_FAULT="crash@1",
        VOLFEFE_WORKER_FAULT_ONCE=str(tmp_path / "crashed-once"),
    )
    (model / "config.json").write_text("{this is not json")  # the replacement cannot load
    with site.client(TOKEN) as client:
        client.post("/api/v1/classify", json={"texts": ["Stocks"]})  # the child crashes

        def config_error() -> bool:
            return client.get("/readyz").json()["checks"]["classifier"].startswith("ConfigError")

        eventually(config_error, timeout=START_TIMEOUT, interval=0.5)
        assert client.get("/readyz").status_code == 503
        response = client.post("/api/v1/classify", json={"texts": ["Stocks"]})
        assert response.status_code == 503, response.text
        assert response.json()["error"]["type"] == "ConfigError"
        assert client.get("/healthz").status_code == 200
    assert site.stop() == 0
