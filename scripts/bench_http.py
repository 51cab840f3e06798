#!/usr/bin/env python3
"""HTTP load figure: `/api/v1/classify` with 16 concurrent clients vs `Classifier.classify_many`.

    python scripts/bench_http.py [--quick] [--json PATH] [--model DIR] [--posts N] [--clients 16]

Both rows run in the same run, on the same model, backend and settings, one after the other
(never at once: they would share the cores). `classify_many` is one call with every text;
`http` is `volfefe serve` as a separate process with `--clients` httpx clients each sending
one text per request (the model-server pattern) as fast as answers come; `http_batch8` sends
8 texts per request. Reports posts/s, the ratio to `classify_many` (target >= 0.9) and
per-request p50/p95 latency. Without --model it uses the FinBERT-sized random model of
scripts/bench.py (built once into the same cache), or with --quick the tiny model. The
database is DATABASE_URL when set, else an embedded server in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
SAMPLE_POSTS = ROOT / "data" / "sample_posts.jsonl"
sys.path.insert(0, str(ROOT))

TARGET = 0.9  # http >= 0.9 x classify_many
READY_TIMEOUT = 300.0


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[bench_http] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def load_corpus(posts: int, seed: int) -> list[str]:
    """`posts` non-empty texts drawn (with repeats) from the sample posts, seeded."""
    texts = []
    for line in SAMPLE_POSTS.read_text().splitlines():
        text = json.loads(line).get("text") or ""
        if text.strip():
            texts.append(text)
    rng = random.Random(seed)
    return [rng.choice(texts) for _ in range(posts)]


def ensure_model(model: Path | None, quick: bool, workdir: Path) -> tuple[Path, str]:
    """The model folder and its kind; the FinBERT-sized one is shared with scripts/bench.py."""
    if model is not None:
        return model.resolve(), "custom"
    if quick:
        out = workdir / "tiny-model"
        subprocess.run(
            [sys.executable, str(SCRIPTS / "make_tiny_model.py"), str(out)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        return out, "tiny"
    digest = hashlib.sha256()
    for source in (SCRIPTS / "make_finbert_like_model.py", SAMPLE_POSTS):
        digest.update(source.read_bytes())
    cached = (
        Path(tempfile.gettempdir())
        / "volfefe-bench-cache"
        / f"finbert-like-{digest.hexdigest()[:10]}-seed0"
    )
    if not (cached / ".complete").is_file():
        log(f"building the FinBERT-sized model into {cached} (once)")
        building = cached.with_name(f"{cached.name}.building-{os.getpid()}")
        building.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, str(SCRIPTS / "make_finbert_like_model.py"), str(building)],
            check=True,
            timeout=900,
        )
        (building / ".complete").write_text("ok\n")
        try:
            building.rename(cached)
        except OSError:
            shutil.rmtree(building, ignore_errors=True)
    return cached, "finbert-like"


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


@contextlib.contextmanager
def fresh_database(workdir: Path) -> Iterator[dict[str, str]]:
    """Environment pointing `serve` at a database of its own, removed afterwards: a new
    database on the $DATABASE_URL server (migrated, dropped WITH (FORCE) at the end), else an
    embedded server in the work folder (stopped at the end; volfefe leaves it running)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    server = os.environ.get("DATABASE_URL")
    if not server:
        data_dir = workdir / "data"
        try:
            yield {"VOLFEFE_DATA_DIR": str(data_dir)}
        finally:
            stop_embedded(data_dir / "pgdata")
        return
    name = f"volfefe_bench_http_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(server, dbname=name)
    try:
        from volfefe.store.migrate import migrate

        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
        yield {"DATABASE_URL": url}
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


def stop_embedded(pgdata: Path) -> None:
    """Stop the embedded server the run started (as root it runs as the pgserver user)."""
    if not (pgdata / "postmaster.pid").exists():
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
    user = "pgserver" if os.geteuid() == 0 else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


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


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 60 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=60)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="tiny model, few posts (~1 min)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--model", type=Path, help="model folder (default: FinBERT-sized)")
    parser.add_argument("--posts", type=int, help="texts per row (default 300, quick 48)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"))
    parser.add_argument("--seed", type=int, default=1234)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run both rows and print the table (and the JSON when asked)."""
    args = parse_args(argv)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="volfefe-bench-http-"))
    workdir.chmod(0o755)  # as root the embedded server runs as another user and must get in
    try:
        model, kind = ensure_model(args.model, args.quick, workdir)
        texts = load_corpus(args.posts or (48 if args.quick else 300), args.seed)
        token = secrets.token_urlsafe(24)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("VOLFEFE_") and k != "DATABASE_URL"
        }
        for name in ("VOLFEFE_WORKERS", "VOLFEFE_THREADS", "VOLFEFE_BATCH_SIZE"):
            if name in os.environ:  # the configuration under test
                env[name] = os.environ[name]
        env.update(
            {
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "VOLFEFE_MODEL": str(model),
                "VOLFEFE_BACKEND": args.backend,
                "VOLFEFE_API_TOKEN": token,
                "VOLFEFE_ONNX_CACHE": str(workdir / "onnx"),
            }
        )
        log(f"classify_many over {len(texts)} texts ({kind} model, {args.backend})")
        baseline = bench_classify_many(env, texts)
        log("starting volfefe serve")
        with fresh_database(workdir) as db_env:
            proc, base, _ = start_server({**env, **db_env}, workdir)
            try:
                rows = {"classify_many": baseline}
                for name, per_request in (("http", 1), ("http_batch8", 8)):
                    log(f"{name}: {args.clients} clients, {per_request} text(s) per request")
                    rows[name] = asyncio.run(drive(base, token, texts, args.clients, per_request))
            finally:
                stop(proc)
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
                "database": "DATABASE_URL server" if os.environ.get("DATABASE_URL") else "embedded",
            },
            "total_s": time.monotonic() - started,
        }
        print_table(report)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def print_table(report: dict[str, Any]) -> None:
    """The figures as a Markdown table."""
    print("| row | what | posts/s | x classify_many | p50 ms | p95 ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    what = {
        "classify_many": "`Classifier.classify_many`, one call, in process",
        "http": f"`POST /api/v1/classify`, {report['settings']['clients']} clients, 1 text each",
        "http_batch8": f"the same, {report['settings']['clients']} clients, 8 texts per request",
    }
    for name, row in report["rows"].items():
        p50 = f"{row['p50_ms']:.1f}" if "p50_ms" in row else "-"
        p95 = f"{row['p95_ms']:.1f}" if "p95_ms" in row else "-"
        print(
            f"| {name} | {what[name]} | {row['posts_per_s']:.2f} | "
            f"{row['vs_classify_many']:.2f} | {p50} | {p95} |"
        )
    met = "met" if report["target"]["met"] else "missed"
    print(f"\nhttp >= {TARGET} x classify_many: {met}; total time: {report['total_s']:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
