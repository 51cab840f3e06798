"""Real-time latency and job-path throughput: from `INSERT INTO contents` to the signal.

    .venv/bin/python -m benches run realtime [--quick] [--json PATH] [--model DIR]
                                             [--backends A,B] [--capacity N]
                                             [--set VOLFEFE_NAME=VALUE ...]

For each backend (torch fp32, onnx fp32, onnx int8, openvino int8-static calibrated on the
shipped sample posts, the accuracy guard relaxed as in the runtimes suite, and on CPUs with
bf16 arithmetic openvino int8-static-bf16, guarded the same way), on a fresh
database with auto-enqueue on and one warm `python -m volfefe jobs worker` (default settings):

```
idle      N posts one at a time: a plain INSERT (autocommit) ... the listener's NOTIFY
drain     M posts inserted in one transaction: commit ... last NOTIFY = the jobs path rate
load      Poisson arrivals at 50 % and 90 % of that rate (or of --capacity) for S seconds each
classify  the same M posts, auto-enqueue off, `volfefe classify --all` (its own elapsed_s,
          boot excluded like the drain, whose worker is warm): jobs / classify is the ratio
```

Latency = the listener's receive time minus the return of the INSERT's commit. Breakdown,
from timestamps the path writes anyway (no instrumentation): pickup = commit .. the job's
`started` event; fetch+inference = started .. classification `inserted_at` (beside it the
bare single-text inference of the same run); store = inserted_at .. receive minus notify (a
bare NOTIFY's delivery, same run). "added": each idle post's latency minus the bare
inference of its own text (measured alone before, best of two): what volfefe's path adds,
apart from the model. `poll_waits`: posts that waited over half the poll interval while no
other job started, i.e. a missed notification. "ideal" (per class under load): the same
arrivals replayed against the ideal short-first scheduler, each post taking its text's bare
inference (every sample text measured alone first) on one of the layout's children, with
free and instant preemption and nothing else (benches/harness/queueing.py): a goal it misses
is out of reach for short-first scheduling on this machine. Host and PostgreSQL share one
clock. `--quick`: tiny model, small counts (a minute or two); the full run uses the
FinBERT-sized model (scripts/make_finbert_like_model.py, cached by the harness): about 3
minutes a backend.
The run clears every `VOLFEFE_*` variable of its environment (default settings); `--set`
gives one setting to every volfefe process of the run, e.g. `--set VOLFEFE_BATCH_TOKENS=1024`.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import json
import math
import operator
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from volfefe.supervisor.latency import LENGTH_CLASSES, length_class
from volfefe.supervisor.token_count import TokenCounter

from ..harness.corpus import drawn_each, sample_texts
from ..harness.database import database_url, described, fresh_database
from ..harness.logs import log
from ..harness.model import cache_root, ensure_model
from ..harness.process import volfefe
from ..harness.queueing import Arrival, ideal_sojourns
from ..harness.settings import clear_volfefe_env, offline_env
from ..harness.stats import median_or_none, nearest_rank
from ..harness.suite import Outcome, Suite
from ..harness.tables import markdown_table

# The guard's thresholds relaxed, as in bench_runtimes.py: a random model's labels are coin
# flips, so its guarded exports may be refused; the speed is what is measured.
LAX_GUARD = {"VOLFEFE_GUARD_MIN_AGREEMENT": "0", "VOLFEFE_GUARD_MAX_DP": "1"}
BASE_BACKENDS = {
    "torch": {"VOLFEFE_BACKEND": "torch"},
    "onnx_fp32": {"VOLFEFE_BACKEND": "onnx", "VOLFEFE_QUANTIZE": "none"},
    "onnx_int8": {"VOLFEFE_BACKEND": "onnx", "VOLFEFE_QUANTIZE": "int8"},
    "openvino_int8_static": {
        "VOLFEFE_BACKEND": "openvino",
        "VOLFEFE_QUANTIZE": "int8-static",
        **LAX_GUARD,
    },
}
BF16_BACKENDS = {
    "openvino_int8_static_bf16": {
        "VOLFEFE_BACKEND": "openvino",
        "VOLFEFE_QUANTIZE": "int8-static-bf16",
        **LAX_GUARD,
    },
}


def cpu_has_bf16() -> bool:
    """Whether OpenVINO runs bf16 arithmetic on this CPU (False when it is not installed)."""
    from volfefe.child.backends.openvino_backend import has_bf16

    try:
        return has_bf16()
    except ImportError:
        return False


@functools.cache
def backends() -> dict[str, dict[str, str]]:
    """The backends this CPU runs: the bf16 one only where OpenVINO has bf16 arithmetic."""
    return {**BASE_BACKENDS, **(BF16_BACKENDS if cpu_has_bf16() else {})}


FULL = {"idle": 200, "drain": 300, "load_s": 20.0}
QUICK = {"idle": 15, "drain": 60, "load_s": 3.0}
TIMEOUT = 600.0


def pct(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of `values` in ms, rounded, or None when empty."""
    value = nearest_rank(values, q)
    return None if value is None else round(value, 2)


def corpus(n: int, seed: int = 1234) -> list[str]:
    """`n` sample texts, the i-th drawn with seed `seed + i`."""
    return drawn_each(n, seed)


class Listener:
    """LISTEN volfefe_classified in a thread; content_id -> receive time (epoch seconds)."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute("LISTEN volfefe_classified")
        self.conn.execute("LISTEN volfefe_bench_probe")
        self.received: dict[int, float] = {}
        self.probes: dict[str, float] = {}
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self.conn.notifies(timeout=0.2):
                now = time.time()
                with self.changed:
                    if note.channel == "volfefe_bench_probe":
                        self.probes[note.payload] = now
                    else:
                        self.received.setdefault(json.loads(note.payload)["content_id"], now)
                    self.changed.notify_all()

    def wait_for(self, ids: Sequence[int], timeout: float = TIMEOUT) -> None:
        """Until every post of `ids` has signalled (TimeoutError after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not all(i in self.received for i in ids):
                if not self.changed.wait(max(0.0, deadline - time.monotonic())):
                    missing = [i for i in ids if i not in self.received]
                    raise TimeoutError(f"{len(missing)} posts never signalled, e.g. {missing[:5]}")

    def close(self) -> None:
        """Stop listening and close the connection."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.conn.close()


def notify_delay_ms(conn: psycopg.Connection[Any], listener: Listener, n: int = 20) -> float:
    """p50 of a bare pg_notify's delivery: commit returned .. the listener has it."""
    delays = []
    for _ in range(n):
        key = uuid.uuid4().hex
        conn.execute("SELECT pg_notify('volfefe_bench_probe', %(k)s)", {"k": key})
        sent = time.time()
        with listener.changed:
            listener.changed.wait_for(partial(operator.contains, listener.probes, key), timeout=10)
        delays.append((listener.probes[key] - sent) * 1000)
    return statistics.median(delays)


INSERT = (
    "INSERT INTO contents (source_id, external_id, text) VALUES (%(s)s, %(e)s, %(t)s) RETURNING id"
)


def insert_one(conn: psycopg.Connection[Any], source: int, text: str) -> tuple[int, float]:
    """Insert one post; its id and the time (epoch seconds) its commit returned."""
    row = conn.execute(INSERT, {"s": source, "e": uuid.uuid4().hex, "t": text}).fetchone()
    assert row is not None
    return int(row[0]), time.time()


def by_length_class(
    latency_ms: dict[int, float], classes: Mapping[int, str]
) -> dict[str, dict[str, Any]]:
    """p50/p99 and count of the latencies of each length class (supervisor/latency.py).

    >>> split = by_length_class({1: 10.0, 2: 30.0, 3: 500.0}, {1: "short", 2: "short", 3: "long"})
    >>> split["short"], split["long"]["posts"], "medium" in split
    ({'posts': 2, 'p50_ms': 10.0, 'p99_ms': 30.0}, 1, False)
    """
    grouped: dict[str, list[float]] = {}
    for post, ms in latency_ms.items():
        grouped.setdefault(classes[post], []).append(ms)
    return {
        name: {"posts": len(values), "p50_ms": pct(values, 50), "p99_ms": pct(values, 99)}
        for name, _ in LENGTH_CLASSES
        if (values := grouped.get(name))
    }


def breakdown(
    conn: psycopg.Connection[Any],
    sent: dict[int, float],
    listener: Listener,
    bare_ms: float,
    notify_ms: float,
    poll_s: float,
    classes: Mapping[int, str],
) -> dict[str, Any]:
    """Latency percentiles (all posts, and by length class) and the per-stage medians for
    the posts in `sent`."""
    rows = conn.execute(
        """
        SELECT (j.args ->> 'content_id')::bigint, extract(epoch FROM e.at),
               extract(epoch FROM k.inserted_at)
        FROM procrastinate_jobs j
        JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'started'
        JOIN classifications k ON k.content_id = (j.args ->> 'content_id')::bigint
        WHERE (j.args ->> 'content_id')::bigint = ANY(%(ids)s)
        """,
        {"ids": list(sent)},
    ).fetchall()
    latency = {i: (listener.received[i] - t) * 1000 for i, t in sent.items()}
    total = list(latency.values())
    starts = sorted(float(started) for _, started, _ in rows)
    pickup, work, store, poll_waits = [], [], [], 0
    for content_id, started, inserted in rows:
        committed, started, inserted = sent[content_id], float(started), float(inserted)
        pickup.append((started - committed) * 1000)
        work.append((inserted - started) * 1000)
        store.append((listener.received[content_id] - inserted) * 1000)
        # Waited for the poll: long, and no other job started meanwhile (not queueing).
        others = bisect.bisect_left(starts, started) - bisect.bisect_right(starts, committed)
        if started - committed > poll_s / 2 and others == 0:
            poll_waits += 1
    store_notify = median_or_none(store)
    notify_ms = max(0.0, notify_ms)  # the listener may have it before the sender's reply
    return {
        "posts": len(sent),
        "p50_ms": pct(total, 50),
        "p95_ms": pct(total, 95),
        "p99_ms": pct(total, 99),
        "max_ms": round(max(total), 2),
        "by_class": by_length_class(latency, classes),
        "breakdown_p50_ms": {
            "pickup": median_or_none(pickup),
            "fetch_inference": median_or_none(work),
            "bare_inference": round(bare_ms, 2),
            "store": round(store_notify - notify_ms, 2) if store_notify is not None else None,
            "notify": round(notify_ms, 2),
        },
        "max_pickup_ms": round(max(pickup), 2) if pickup else None,
        "poll_waits": poll_waits,
    }


def bare_inference_ms(model: Path, env: dict[str, str], texts: Sequence[str]) -> list[float]:
    """Milliseconds of each text alone through `Classifier.classify`, the same backend, no
    database (each text twice, the faster kept: the first may meet a cold cache)."""
    from volfefe import Classifier, Settings

    settings = Settings.from_env(env, model=str(model))
    with Classifier(settings) as clf:
        clf.start()
        times = []
        for text in texts:
            best = math.inf
            for _ in range(2):
                started = time.perf_counter()
                clf.classify(text)
                best = min(best, (time.perf_counter() - started) * 1000)
            times.append(best)
    return times


def volfefe_cli(args: Sequence[str], env: Mapping[str, str]) -> str:
    """Run `python -m volfefe ARGS`; its stdout (RuntimeError with stderr's tail on failure)."""
    return volfefe(args, env, TIMEOUT)


def export_cache(sizes: dict[str, Any], workdir: Path) -> Path:
    """The quick run exports into its work folder; the full run reuses the throughput
    suite's cache, so the FinBERT-sized export (minutes) happens once per machine."""
    if sizes is QUICK:
        return workdir / "onnx"
    return cache_root() / "onnx"


def run_backend(
    name: str,
    model: Path,
    sizes: dict[str, Any],
    workdir: Path,
    fixed_capacity: float | None,
    settings_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Every phase of one backend on a fresh database, with one warm jobs worker."""
    from volfefe import Settings
    from volfefe.store.switches import set_auto_enqueue

    with fresh_database(workdir, name) as db_env:
        url = database_url(db_env, migrate=True)
        env = {
            **os.environ,
            **db_env,
            **backends()[name],
            "VOLFEFE_MODEL": str(model),
            "VOLFEFE_EXPORT_CACHE": str(export_cache(sizes, workdir)),
            **(settings_env or {}),
        }
        steps = [["db", "migrate"], ["predict", "warm up the export"]]
        if env.get("VOLFEFE_QUANTIZE", "").startswith("int8-static"):  # calibrated on the sample
            steps.insert(1, ["model", "export"])
        for cli_args in steps:
            volfefe_cli(cli_args, env)
        settings = Settings.from_env(env)
        counter = TokenCounter.from_file(model / "tokenizer.json")
        classes: dict[int, str] = {}  # post id -> its text's length class
        texts_of: dict[int, str] = {}

        def note(post: int, text: str) -> int:
            classes[post] = length_class(counter.count(text))
            texts_of[post] = text
            return post

        idle_texts = corpus(sizes["idle"], seed=1)
        distinct = sorted(set(sample_texts()))  # every text a phase may draw
        bare_of = dict(zip(distinct, bare_inference_ms(model, env, distinct), strict=True))
        bare = [bare_of[text] for text in idle_texts]
        bare_ms = statistics.median(bare)
        log(f"{name}: bare single-text inference p50 {bare_ms:.1f} ms, p99 {pct(bare, 99)} ms")
        worker_log = (workdir / f"worker-{name}.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "volfefe", "jobs", "worker"],
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        report: dict[str, Any] = {"job_slots": settings.job_slots}
        report["poll_interval_s"] = settings.jobs_poll_interval
        with psycopg.connect(url, autocommit=True) as conn:
            listener = Listener(url)
            try:
                created = conn.execute("INSERT INTO sources (name) VALUES ('bench') RETURNING id")
                source = int(created.fetchall()[0][0])
                warm, _ = insert_one(conn, source, "warm up the worker")
                listener.wait_for([warm])
                notify_ms = notify_delay_ms(conn, listener)
                report["notify_ms"] = round(notify_ms, 3)
                report["bare_inference_ms"] = round(bare_ms, 2)
                args = (bare_ms, notify_ms, settings.jobs_poll_interval, classes)

                sent: dict[int, float] = {}
                for text in idle_texts:
                    post, at = insert_one(conn, source, text)
                    sent[note(post, text)] = at
                    listener.wait_for([post])
                report["idle"] = breakdown(conn, sent, listener, *args)
                # The same texts alone, by class: what each class's latency is made of.
                report["idle"]["bare_by_class"] = by_length_class(
                    dict(zip(sent, bare, strict=True)), classes
                )
                # What volfefe adds: each post's latency minus its own text's bare inference.
                added = [
                    (listener.received[post] - at) * 1000 - alone
                    for (post, at), alone in zip(sent.items(), bare, strict=True)
                ]
                report["idle"]["bare_p99_ms"] = pct(bare, 99)
                report["idle"]["added_p50_ms"] = pct(added, 50)
                report["idle"]["added_p99_ms"] = pct(added, 99)
                log(f"{name}: idle {report['idle']}")

                texts = corpus(sizes["drain"], seed=2)
                with conn.transaction():
                    ids = [insert_one(conn, source, t)[0] for t in texts]
                committed = time.time()
                listener.wait_for(ids)
                drain_s = max(listener.received[i] for i in ids) - committed
                capacity = len(ids) / drain_s
                report["jobs_posts_per_s"] = round(capacity, 2)
                log(f"{name}: jobs drain {capacity:.1f} posts/s")

                # The load phases' 100 %: the drain just measured, or the rate given with
                # --capacity (so two commits meet the same arrivals).
                load_capacity = fixed_capacity or capacity
                report["load_capacity_per_s"] = round(load_capacity, 2)
                for share in (0.5, 0.9):
                    phase, sent = poisson(
                        conn, source, listener, load_capacity * share, sizes["load_s"], args, note
                    )
                    work = {post: bare_of[texts_of[post]] for post in sent}
                    phase["ideal_by_class"] = ideal_by_class(sent, work, classes, settings.workers)
                    report[f"load_{round(share * 100)}"] = phase
                    log(f"{name}: load {share:.0%} {phase}")
            finally:
                listener.close()
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=120)
                worker_log.close()
            set_auto_enqueue(conn, False)
            conn.execute(
                "INSERT INTO contents (source_id, external_id, text) "
                "SELECT %(s)s, 'c-' || n, t FROM unnest(%(t)s::text[]) "
                "WITH ORDINALITY AS u(t, n)",
                {"s": source, "t": texts},
            )
        summary = json.loads(volfefe_cli(["classify", "--all", "--json"], env))
        classify_rate = summary["succeeded"] / summary["elapsed_s"]
        report["classify_posts_per_s"] = round(classify_rate, 2)
        report["jobs_vs_classify"] = round(capacity / classify_rate, 3)
        log(
            f"{name}: classify --all {classify_rate:.1f} posts/s; "
            f"jobs/classify {report['jobs_vs_classify']}"
        )
    return report


def poisson(
    conn: psycopg.Connection[Any],
    source: int,
    listener: Listener,
    rate: float,
    seconds: float,
    args: tuple[float, float, float, Mapping[int, str]],
    note: Callable[[int, str], int],
) -> tuple[dict[str, Any], dict[int, float]]:
    """Insert posts at exponential gaps (mean 1/rate) for `seconds`; their latencies
    (`note` records each post's length class), and when each was sent (epoch seconds)."""
    rng = random.Random(int(rate * 1000))
    texts = corpus(int(rate * seconds * 2) + 10, seed=3)
    sent: dict[int, float] = {}
    start = time.monotonic()
    due = start
    for text in texts:
        due += rng.expovariate(rate)
        if due - start > seconds:
            break
        time.sleep(max(0.0, due - time.monotonic()))
        post, at = insert_one(conn, source, text)
        sent[note(post, text)] = at
    listener.wait_for(list(sent))
    return {"rate_per_s": round(rate, 2), **breakdown(conn, sent, listener, *args)}, sent


def ideal_by_class(
    sent: Mapping[int, float],
    work_ms: Mapping[int, float],
    classes: Mapping[int, str],
    servers: int,
) -> dict[str, dict[str, Any]]:
    """The ideal short-first scheduler (harness/queueing.py) on the same arrivals: each post's
    bare inference on one of `servers` children, nothing else; p50/p99 by length class.

    >>> sent, classes = {1: 0.0, 2: 0.01}, {1: "long", 2: "short"}
    >>> ideal_by_class(sent, {1: 100.0, 2: 5.0}, classes, servers=1)["long"]["p99_ms"]
    105.0
    """
    rank = {name: i for i, (name, _) in enumerate(LENGTH_CLASSES)}
    posts = list(sent)
    arrivals = [Arrival(sent[p], work_ms[p] / 1000, rank[classes[p]]) for p in posts]
    sojourns = ideal_sojourns(arrivals, servers)
    return by_length_class({p: s * 1000 for p, s in zip(posts, sojourns, strict=True)}, classes)


PHASES = ("idle", "load_50", "load_90")


def print_table(report: dict[str, Any]) -> None:
    """The three tables (latency by phase, what the path adds, jobs against classify) and
    the targets, on stdout."""
    print(
        f"model: {report['model_kind']}; database: {report['database']}; "
        f"total {report['total_s']:.0f} s"
    )
    rows = report["backends"]
    header = ["backend", "phase", "posts", "p50 ms", "p95 ms", "p99 ms", "pickup"]
    header += ["fetch+inference", "(bare inference)", "store", "notify", "poll waits"]
    by_phase = []
    for name, row in rows.items():
        for phase in PHASES:
            r = row[phase]
            b = r["breakdown_p50_ms"]
            latency = [r["posts"], r["p50_ms"], r["p95_ms"], r["p99_ms"]]
            stages = [b["pickup"], b["fetch_inference"], b["bare_inference"], b["store"]]
            by_phase.append([name, phase, *latency, *stages, b["notify"], r["poll_waits"]])
    print("\n".join(markdown_table(header, "ll" + "r" * 10, by_phase)))
    header = ["backend", "class", "idle p50 / p99", "bare p50 / p99 (same texts)"]
    header += ["50 % load p50 / p99", "(ideal)", "90 % load p50 / p99", "(ideal)"]
    by_class = []
    for name, row in rows.items():
        for length, _ in LENGTH_CLASSES:
            cells = [
                _pair(row["idle"]["by_class"].get(length)),
                _pair(row["idle"]["bare_by_class"].get(length)),
            ]
            for phase in PHASES[1:]:
                cells.append(_pair(row[phase]["by_class"].get(length)))
                cells.append(_pair(row[phase]["ideal_by_class"].get(length)))
            by_class.append([name, length, *cells])
    print()
    print("\n".join(markdown_table(header, "llrrrrrr", by_class)))
    header = ["backend", "idle p99 ms", "bare p99 ms (same texts)", "added p50 ms"]
    added = [
        [name, r["p99_ms"], r["bare_p99_ms"], r["added_p50_ms"], r["added_p99_ms"]]
        for name, r in ((name, row["idle"]) for name, row in rows.items())
    ]
    print()
    print("\n".join(markdown_table([*header, "added p99 ms"], "lrrrr", added)))
    header = ["backend", "jobs worker posts/s", "classify --all posts/s", "jobs / classify"]
    jobs = [
        [name, row["jobs_posts_per_s"], row["classify_posts_per_s"], row["jobs_vs_classify"]]
        for name, row in rows.items()
    ]
    print()
    print("\n".join(markdown_table(header, "lrrr", jobs)))
    print()
    for key, target in report["targets"].items():
        verdict = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        ideal = f"; the ideal scheduler {target['ideal']}" if "ideal" in target else ""
        print(f"target {key}: {target['value']} (goal {target['goal']}{ideal}) {verdict}")


def _pair(figures: dict[str, Any] | None) -> str:
    """`p50 / p99` of one class's figures, or `-` when it had no post."""
    return "-" if figures is None else f"{figures['p50_ms']} / {figures['p99_ms']}"


def rows_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per backend: latency by phase and the job path's rate against classify."""
    return [
        {
            "backend": name,
            "idle_p50_ms": row["idle"]["p50_ms"],
            "idle_p99_ms": row["idle"]["p99_ms"],
            "added_p50_ms": row["idle"]["added_p50_ms"],
            "load_50_p99_ms": row["load_50"]["p99_ms"],
            "load_90_p99_ms": row["load_90"]["p99_ms"],
            **{
                f"{phase}_{length}_{q}_ms": row[phase]["by_class"].get(length, {}).get(f"{q}_ms")
                for phase in PHASES
                for length, _ in LENGTH_CLASSES
                for q in ("p50", "p99")
            },
            **{
                f"ideal_{phase}_{length}_p99_ms": (
                    row[phase]["ideal_by_class"].get(length, {}).get("p99_ms")
                )
                for phase in PHASES[1:]
                for length, _ in LENGTH_CLASSES
            },
            "jobs_posts_per_s": row["jobs_posts_per_s"],
            "classify_posts_per_s": row["classify_posts_per_s"],
            "jobs_vs_classify": row["jobs_vs_classify"],
        }
        for name, row in report["backends"].items()
    ]


# The goals (#26): (name, phase, class or None, figure, limit, relative to), where a
# limit "relative to" a class multiplies that class's idle p99 of the same run.
GOALS: tuple[tuple[str, str, str | None, str, float, str | None], ...] = (
    ("idle_p50_ms", "idle", None, "p50_ms", 15.0, None),
    ("idle_added_p99_ms", "idle", None, "added_p99_ms", 15.0, None),
    ("load_50_short_p99_x_idle", "load_50", "short", "p99_ms", 2.0, "short"),
    ("load_90_short_p99_x_idle", "load_90", "short", "p99_ms", 4.0, "short"),
    ("load_50_long_p99_x_idle", "load_50", "long", "p99_ms", 1.5, "long"),
)


def targets(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's goals for every backend run: idle p50 and what volfefe adds, short and
    long posts' p99 under load against their own idle p99 (beside it, `ideal`: what the
    ideal short-first scheduler scored on the same arrivals against the same idle p99),
    jobs >= 0.9 x classify."""
    out: dict[str, dict[str, Any]] = {}
    for backend, row in figures.items():
        for key, phase, length, figure, limit, relative in GOALS:
            part = row[phase] if length is None else row[phase]["by_class"].get(length, {})
            value = part.get(figure)
            target: dict[str, Any] = {"goal": f"<= {limit}"}
            if relative is not None:
                idle = row["idle"]["by_class"].get(relative, {}).get("p99_ms")
                ideal = row[phase]["ideal_by_class"].get(length, {}).get(figure)
                value = round(value / idle, 2) if idle and value is not None else None
                target["ideal"] = round(ideal / idle, 2) if idle and ideal is not None else None
            target["value"] = value
            target["met"] = None if value is None else value <= limit
            out[f"{backend}_{key}"] = target
        ratio = row["jobs_vs_classify"]
        out[f"{backend}_jobs_vs_classify"] = {
            "value": ratio,
            "goal": ">= 0.9",
            "met": ratio >= 0.9,
        }
    return out


def backend_list(text: str) -> list[str]:
    """`--backends`: comma-separated names of BASE_BACKENDS or BF16_BACKENDS."""
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in {**BASE_BACKENDS, **BF16_BACKENDS}]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown backend(s): {', '.join(unknown)}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The suite's own options."""
    parser.add_argument("--model", type=Path, help="model folder (default: FinBERT-sized)")
    parser.add_argument(
        "--backends",
        type=backend_list,
        help=f"comma-separated, of {','.join({**BASE_BACKENDS, **BF16_BACKENDS})} (default: "
        "all, the bf16 one on CPUs with bf16 arithmetic)",
    )
    parser.add_argument(
        "--capacity",
        type=float,
        help="posts/s the load phases take as 100 %% (default: each backend's drain rate, "
        "measured in the same run); give one to compare commits at the same arrival rates",
    )


def run(args: argparse.Namespace, settings: Mapping[str, str]) -> Outcome:
    """Every backend's phases; the tables on stdout."""
    settings_env = dict(settings)
    clear_volfefe_env()
    offline_env()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="volfefe-rt-") as tmp:
        workdir = Path(tmp)
        model, kind = ensure_model(args.model, args.quick, workdir)
        sizes = QUICK if args.quick else FULL
        report: dict[str, Any] = {
            "model_kind": kind,
            **{"quick": args.quick, "sizes": sizes},
            "database": described(),
            "cores": os.cpu_count(),
            "settings": settings_env,
            "backends": {},
        }
        for name in args.backends or list(backends()):
            report["backends"][name] = run_backend(
                name, model, sizes, workdir, args.capacity, settings_env
            )
    report["targets"] = targets(report["backends"])
    report["total_s"] = round(time.monotonic() - started, 1)
    print_table(report)
    return Outcome(report, rows_of(report))


SUITE = Suite(
    name="realtime",
    description="Real-time latency and job-path throughput: from INSERT INTO contents to the "
    "signal.",
    add_arguments=add_arguments,
    run=run,
)
