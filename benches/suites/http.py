"""HTTP load figure: `/api/v1/classify` with 16 concurrent clients vs `Classifier.classify_many`.

    python -m benches run http [--quick] [--json PATH] [--model DIR] [--posts N] [--clients 16]
                               [--backend torch|onnx] [--seed N] [--set VOLFEFE_NAME=VALUE]

Both rows run in the same run, on the same model, backend and settings, one after the other
(never at once: they would share the cores). `classify_many` is one call with every text;
`http` is `volfefe serve` as a separate process with `--clients` httpx clients each sending
one text per request (the model-server pattern) as fast as answers come; `http_batch8` sends
8 texts per request. Reports posts/s, the ratio to `classify_many` (target >= 0.9) and
per-request p50/p95 latency. Without --model it uses the FinBERT-sized random model of the
harness (built once into its cache), or with --quick the tiny model. The database is a fresh
one on DATABASE_URL's server when set, else an embedded server in a temporary folder. Of the
environment's VOLFEFE_* variables only VOLFEFE_WORKERS, VOLFEFE_THREADS and
VOLFEFE_BATCH_SIZE are kept (the configuration under test); `--set` gives any setting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from ..harness.corpus import drawn
from ..harness.database import described, fresh_database
from ..harness.logs import log
from ..harness.model import ensure_model
from ..harness.process import ROOT, stop_process
from ..harness.stats import percentile
from ..harness.suite import Outcome, Suite
from ..harness.tables import markdown_table

TARGET = 0.9  # http >= 0.9 x classify_many
READY_TIMEOUT = 300.0
STOP_TIMEOUT = 60.0  # seconds `serve` gets to stop after SIGTERM


def bench_classify_many(env: dict[str, str], texts: list[str]) -> dict[str, Any]:
    """One `classify_many` call over every text, on a warmed-up Classifier."""
    from volfefe import Classifier, Settings

    settings = Settings.from_env(env)
    with Classifier(settings) as clf:
        clf.start()
        clf.classify_many(texts[:8])  # warm-up
        started = time.monotonic()
        clf.classify_many(texts)
        elapsed = time.monotonic() - started
    return {"posts_per_s": len(texts) / elapsed, "seconds": elapsed}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`python -m volfefe serve` on a free port; returns the process, base URL and log."""
    port = free_port()
    log_path = workdir / "serve.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "volfefe", "serve", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(base + "/readyz", timeout=5).status_code == 200:
                return proc, base, log_path
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"serve not ready in {READY_TIMEOUT} s:\n{log_path.read_text()}")
        time.sleep(0.2)


async def drive(
    base: str, token: str, texts: list[str], clients: int, per_request: int
) -> dict[str, Any]:
    """`clients` concurrent clients send `per_request` texts per call until all are sent."""
    chunks = [texts[i : i + per_request] for i in range(0, len(texts), per_request)]
    latencies: list[float] = []
    next_chunk = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=120
    ) as client:

        async def one_client() -> None:
            nonlocal next_chunk
            while next_chunk < len(chunks):
                chunk = chunks[next_chunk]
                next_chunk += 1
                started = time.monotonic()
                response = await client.post("/api/v1/classify", json={"texts": chunk})
                latencies.append(time.monotonic() - started)
                response.raise_for_status()
                results = response.json()["results"]
                if any("error" in r for r in results):
                    raise RuntimeError(f"a text failed: {results}")

        for _ in range(4):  # warm-up: connections, the children's first forward passes
            (await client.post("/api/v1/classify", json={"texts": chunks[0]})).raise_for_status()
        started = time.monotonic()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.monotonic() - started
    return {
        "posts_per_s": len(texts) / elapsed,
        "seconds": elapsed,
        "requests": len(chunks),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The suite's own options."""
    parser.add_argument("--model", type=Path, help="model folder (default: FinBERT-sized)")
    parser.add_argument("--posts", type=int, help="texts per row (default 300, quick 48)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"))
    parser.add_argument("--seed", type=int, default=1234, help="corpus draw")


def run(args: argparse.Namespace, settings: Mapping[str, str]) -> Outcome:
    """Run both rows and print the table."""
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="volfefe-bench-http-"))
    workdir.chmod(0o755)  # as root the embedded server runs as another user and must get in
    try:
        model, kind = ensure_model(args.model, args.quick, workdir)
        texts = drawn(args.posts or (48 if args.quick else 300), args.seed)
        token = secrets.token_urlsafe(24)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("VOLFEFE_") and k != "DATABASE_URL"
        }
        for name in ("VOLFEFE_WORKERS", "VOLFEFE_THREADS", "VOLFEFE_BATCH_SIZE"):
            if name in os.environ:  # the configuration under test
                env[name] = os.environ[name]
        env.update(settings)
        env.update(
            {
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "VOLFEFE_MODEL": str(model),
                "VOLFEFE_BACKEND": args.backend,
                "VOLFEFE_API_TOKEN": token,
                "VOLFEFE_EXPORT_CACHE": str(workdir / "onnx"),
            }
        )
        log(f"classify_many over {len(texts)} texts ({kind} model, {args.backend})")
        baseline = bench_classify_many(env, texts)
        log("starting volfefe serve")
        with fresh_database(workdir, "http") as db_env:
            if "DATABASE_URL" in db_env:  # serve migrates an embedded database itself
                migrate(db_env["DATABASE_URL"])
            proc, base, _ = start_server({**env, **db_env}, workdir)
            try:
                rows = {"classify_many": baseline}
                for name, per_request in (("http", 1), ("http_batch8", 8)):
                    log(f"{name}: {args.clients} clients, {per_request} text(s) per request")
                    rows[name] = asyncio.run(drive(base, token, texts, args.clients, per_request))
            finally:
                stop_process(proc, wait=STOP_TIMEOUT)
        for row in rows.values():
            row["vs_classify_many"] = row["posts_per_s"] / baseline["posts_per_s"]
        report = {
            "rows": rows,
            "target": {
                "http_vs_classify_many": TARGET,
                "met": rows["http"]["vs_classify_many"] >= TARGET,
            },
            "settings": {
                "model_kind": kind,
                "backend": args.backend,
                "posts": len(texts),
                "clients": args.clients,
                "quick": args.quick,
                "cores": os.cpu_count(),
                "database": described(),
            },
            "total_s": time.monotonic() - started,
        }
        print_table(report)
        records = [
            {
                "row": name,
                "posts_per_s": row["posts_per_s"],
                "x_classify_many": row["vs_classify_many"],
                "p50_ms": row.get("p50_ms"),
                "p95_ms": row.get("p95_ms"),
            }
            for name, row in rows.items()
        ]
        return Outcome(report, records)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def migrate(url: str) -> None:
    """volfefe's migrations on a database given by URL (`serve` leaves such a one alone)."""
    import psycopg

    from volfefe.store.migrate import migrate as apply

    with psycopg.connect(url, autocommit=True) as conn:
        apply(conn)


def print_table(report: dict[str, Any]) -> None:
    """The figures as a Markdown table."""
    what = {
        "classify_many": "`Classifier.classify_many`, one call, in process",
        "http": f"`POST /api/v1/classify`, {report['settings']['clients']} clients, 1 text each",
        "http_batch8": f"the same, {report['settings']['clients']} clients, 8 texts per request",
    }
    lines = [
        [name, what[name], f"{row['posts_per_s']:.2f}", f"{row['vs_classify_many']:.2f}"]
        + [f"{row[key]:.1f}" if key in row else "-" for key in ("p50_ms", "p95_ms")]
        for name, row in report["rows"].items()
    ]
    header = ["row", "what", "posts/s", "x classify_many", "p50 ms", "p95 ms"]
    print("\n".join(markdown_table(header, "llrrrr", lines)))
    met = "met" if report["target"]["met"] else "missed"
    print(f"\nhttp >= {TARGET} x classify_many: {met}; total time: {report['total_s']:.1f} s")


SUITE = Suite(
    name="http",
    description="HTTP load: /api/v1/classify with concurrent clients against "
    "Classifier.classify_many.",
    add_arguments=add_arguments,
    run=run,
)
