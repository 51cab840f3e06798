"""`python -m volfefe classify` as a user runs it: subprocesses, the tiny model, real PostgreSQL.

Every test gets a fresh database (both backends of `database_url`), imports a small JSON Lines
file (or the sample posts) with `python -m volfefe import`, then runs `classify` and checks what
the database holds afterwards. Runs under way are observed through their stderr progress lines,
read by a thread per pipe, and through row counts; nothing waits with a bare sleep.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.helpers import alive, assert_no_unretrieved, eventually
from tests.store.helpers import post, write_jsonl
from volfefe.store.connect import connect

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample_posts.jsonl"
DEADLINE = 120.0  # seconds for any one `python -m volfefe` run (boot is a few seconds)
SENTIMENTS = {"positive", "negative", "neutral"}
PROGRESS = re.compile(
    r"\[(?P<i>\d+)/(?P<n>\d+)\] content_id=(?P<id>\d+) "
    r"(?P<sentiment>positive|negative|neutral) \((?P<confidence>[01]\.\d\d)\) (?P<ms>\d+) ms"
)
SUMMARY_KEYS = {"total", "succeeded", "failed", "distribution", "failures"}
# The classify run names its connection, so a test can find (and cut) exactly that one.
RUN_CONNECTIONS = """
SELECT pid FROM pg_stat_activity
WHERE application_name = 'volfefe classify' AND datname = current_database()
"""
RUN_BLOCKED = RUN_CONNECTIONS + " AND wait_event_type = 'Lock'"
TERMINATE_RUN = """
SELECT pg_terminate_backend(pid) AS gone FROM pg_stat_activity
WHERE application_name = 'volfefe classify' AND datname = current_database()
"""


class Running:
    """A `python -m volfefe` process whose stdout and stderr lines are collected by threads."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self.out: list[str] = []
        self.err: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=_drain, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=_drain, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        """The CLI's process id."""
        return self.proc.pid

    def progress(self) -> list[re.Match[str]]:
        """The `[i/N] content_id=...` lines printed so far."""
        return [m for line in list(self.err) if (m := PROGRESS.fullmatch(line))]

    def wait(self, timeout: float = DEADLINE) -> int:
        """Wait for the exit (and for the pipes to be drained); the exit code."""
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        assert_no_unretrieved(self.stderr())
        return code

    def summary(self) -> dict[str, Any]:
        """The `--json` summary on stdout."""
        return json.loads(self.out[-1])  # type: ignore[no-any-return]

    def stderr(self) -> str:
        """Everything on stderr, for assertion messages."""
        return "\n".join(self.err)

    def close(self) -> None:
        """Kill the process if it still runs, reap it and close the pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(30)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _drain(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))


@dataclass
class Volfefe:
    """Runs the CLI against one test database with the tiny model."""

    url: str
    model: Path
    data_dir: Path
    started: list[Running] = field(default_factory=list)

    def env(
        self, fault: str | None = None, batch_size: int | None = None, **extra: str
    ) -> dict[str, str]:
        """The environment of a user who points volfefe at this database and model."""
        env = {
            **os.environ,
            **extra,
            "DATABASE_URL": self.url,
            "VOLFEFE_MODEL": str(self.model),
            "VOLFEFE_WORKERS": "1",
            "VOLFEFE_DATA_DIR": str(self.data_dir),
            "HF_HUB_OFFLINE": "1",
        }
        if fault is not None:
            env["VOLFEFE_WORKER_FAULT"] = fault
        if batch_size is not None:
            env["VOLFEFE_BATCH_SIZE"] = str(batch_size)
        return env

    def run(
        self, *args: str, fault: str | None = None, batch_size: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m volfefe ARGS` to completion."""
        proc = subprocess.run(
            [sys.executable, "-m", "volfefe", *args],
            env=self.env(fault, batch_size),
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=DEADLINE,
        )
        assert_no_unretrieved(proc.stderr)
        return proc

    def start(
        self, *args: str, fault: str | None = None, batch_size: int | None = None, **env: str
    ) -> Running:
        """Start `python -m volfefe ARGS` without waiting; it is killed at teardown if need be.
        Keyword arguments are extra environment variables."""
        running = Running(
            [sys.executable, "-m", "volfefe", *args], self.env(fault, batch_size, **env)
        )
        self.started.append(running)
        return running

    def classify_json(self, *args: str) -> tuple[int, dict[str, Any], str]:
        """`classify ARGS --json`: exit code, parsed summary and stderr."""
        proc = self.run("classify", *args, "--json")
        assert proc.stdout, proc.stderr
        return proc.returncode, json.loads(proc.stdout), proc.stderr

    def import_file(self, path: Path) -> None:
        """`volfefe import PATH`, which must accept every row."""
        proc = self.run("import", str(path))
        assert proc.returncode == 0, proc.stderr

    def import_posts(self, tmp_path: Path, records: list[dict[str, Any]]) -> dict[str, int]:
        """Import `records` through a JSON Lines file; external_id -> content id."""
        self.import_file(write_jsonl(tmp_path / "posts.jsonl", records))
        return {row["external_id"]: row["id"] for row in self.sql(IDS)}

    def sql(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of one query on a short-lived connection of the test's own."""
        with connect(self.url) as conn:
            return conn.execute(query, params).fetchall()


IDS = "SELECT external_id, id FROM contents ORDER BY id"
WITH_TEXT = "SELECT id FROM contents WHERE has_text ORDER BY id"
ROWS = "SELECT id, content_id, sentiment, confidence FROM classifications ORDER BY content_id"
# Every post with text has exactly one classification and the flag set; no other post has one.
INCONSISTENT = """
SELECT c.id, c.has_text, c.classified, count(k.id) AS n
FROM contents AS c
LEFT JOIN classifications AS k ON k.content_id = c.id
GROUP BY c.id
HAVING count(k.id) <> (CASE WHEN c.has_text THEN 1 ELSE 0 END)
    OR c.classified <> c.has_text
"""


@pytest.fixture
def volfefe(database_url: str, tiny_model: Path, tmp_path: Path) -> Iterator[Volfefe]:
    """The CLI on this test's database; processes left running are killed at the end."""
    cli = Volfefe(database_url, tiny_model, tmp_path / "data")
    yield cli
    for running in cli.started:
        running.close()


def texts(*words: str) -> list[dict[str, Any]]:
    """One post per text, with external ids p0, p1, ..."""
    return [post(f"p{i}", text) for i, text in enumerate(words)]


def classified_ids(cli: Volfefe) -> list[int]:
    """Content ids that have a classification, ascending."""
    return [row["content_id"] for row in cli.sql(ROWS)]


def with_text(cli: Volfefe) -> list[int]:
    """Ids of the posts that have text to classify, ascending."""
    return [row["id"] for row in cli.sql(WITH_TEXT)]


def assert_each_post_classified_once(cli: Volfefe) -> None:
    """Every post with text has one classification (and the flag); empty posts have none."""
    assert cli.sql(INCONSISTENT) == []
    assert classified_ids(cli) == with_text(cli)


def children_of(pid: int) -> list[int]:
    """Live volfefe worker children of `pid` (scanning /proc, as `ps` would)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        if ppid == pid and alive(int(stat.parent.name)):
            found.append(int(stat.parent.name))
    return found


def test_limit_takes_the_oldest_then_all_then_nothing(volfefe: Volfefe, tmp_path: Path) -> None:
    ids = volfefe.import_posts(
        tmp_path, texts("   ", "stocks rally", "tariffs crush markets", "fed cuts rates", "oil")
    )
    oldest = [ids["p1"], ids["p2"]]  # p0 is whitespace only: never a candidate

    code, summary, _ = volfefe.classify_json("--limit", "2")
    assert code == 0
    assert set(summary) >= SUMMARY_KEYS
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (2, 2, 0)
    assert set(summary["distribution"]) == SENTIMENTS
    assert sum(summary["distribution"].values()) == 2
    assert summary["failures"] == []
    assert classified_ids(volfefe) == oldest

    code, summary, _ = volfefe.classify_json("--all")
    assert (code, summary["total"], summary["succeeded"], summary["failed"]) == (0, 2, 2, 0)
    assert_each_post_classified_once(volfefe)
    stored = {row["sentiment"] for row in volfefe.sql(ROWS)}
    assert stored <= SENTIMENTS

    code, summary, _ = volfefe.classify_json("--all")
    assert (code, summary["total"], summary["succeeded"], summary["failed"]) == (0, 0, 0, 0)
    assert summary["distribution"] == dict.fromkeys(SENTIMENTS, 0)
    assert len(volfefe.sql(ROWS)) == 4


@pytest.mark.parametrize(
    "args",
    [
        ("--limit", "-1"),
        ("--limit", "0"),
        ("--ids", "1,a"),
        ("--ids", "0"),
        ("--ids", "1", "--all"),
        ("--all", "--limit", "1"),
        ("--ids", "1", "--limit", "1"),
    ],
    ids=[
        "limit-negative",
        "limit-zero",
        "ids-not-a-number",
        "ids-zero",
        "ids-with-all",
        "all-with-limit",
        "ids-with-limit",
    ],
)
def test_usage_errors_exit_2_and_classify_nothing(
    volfefe: Volfefe, tmp_path: Path, args: tuple[str, ...]
) -> None:
    volfefe.import_posts(tmp_path, texts("stocks rally", "oil"))
    proc = volfefe.run("classify", *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[0].startswith("Usage: volfefe classify")
    assert proc.stderr.splitlines()[-1].startswith("UsageError: ")  # errors are printed one way
    assert proc.stdout == ""
    assert volfefe.sql(ROWS) == []


def test_dry_run_lists_ids_and_previews_and_writes_nothing(
    volfefe: Volfefe, tmp_path: Path
) -> None:
    long = "tariffs " * 20  # 160 characters: the preview stops at 60
    ids = volfefe.import_posts(tmp_path, texts(long, "", "stocks  rally\nagain"))

    proc = volfefe.run("classify", "--all", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{ids['p0']}\t{long[:60]}",
        f"{ids['p2']}\tstocks rally again",  # whitespace is collapsed to keep one line
    ]
    proc = volfefe.run("classify", "--ids", f"{ids['p2']},999", "--dry-run")
    assert proc.returncode == 1, proc.stderr  # as the real run would: a missing post fails
    assert proc.stdout.splitlines() == [
        f"{ids['p2']}\tstocks rally again",
        "999\t(would fail: ContentNotFound: content 999 not found)",
    ]
    assert volfefe.sql(ROWS) == []
    assert volfefe.sql("SELECT id FROM contents WHERE classified") == []


def test_dry_run_and_real_run_agree_on_skipped_and_failed(volfefe: Volfefe, tmp_path: Path) -> None:
    ids = volfefe.import_posts(tmp_path, texts("stocks rally", "oil"))
    assert volfefe.classify_json("--ids", str(ids["p0"]))[0] == 0
    wanted = f"{ids['p0']},{ids['p1']},999"

    dry = volfefe.run("classify", "--ids", wanted, "--dry-run", "--json")
    assert dry.returncode == 1, dry.stderr
    plan = json.loads(dry.stdout)  # --json is honoured by a dry run too
    assert [p["content_id"] for p in plan["classify"]] == [ids["p1"]]
    assert plan["skip"] == [
        {
            "content_id": ids["p0"],
            "reason": f"AlreadyClassified: content {ids['p0']} is already classified",
        }
    ]
    assert plan["fail"] == [{"content_id": 999, "reason": "ContentNotFound: content 999 not found"}]
    assert len(volfefe.sql(ROWS)) == 1

    code, summary, err = volfefe.classify_json("--ids", wanted)
    assert code == 1, err
    assert (summary["succeeded"], summary["skipped"], summary["failed"]) == (1, 1, 1)
    assert [f["content_id"] for f in summary["failures"]] == [999]
    assert f"content_id={ids['p0']} skipped: already classified" in err


def test_ids_reports_missing_and_empty_posts_and_stores_the_others(
    volfefe: Volfefe, tmp_path: Path
) -> None:
    ids = volfefe.import_posts(tmp_path, texts("stocks rally", "", "oil", "fed cuts rates"))
    missing = max(ids.values()) + 100
    wanted = [ids["p0"], missing, ids["p1"], ids["p3"]]

    code, summary, err = volfefe.classify_json("--ids", ",".join(map(str, wanted)))
    assert code == 1, err
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (4, 2, 2)
    failures = {f["content_id"]: f["reason"] for f in summary["failures"]}
    assert set(failures) == {missing, ids["p1"]}
    assert failures[missing] == f"ContentNotFound: content {missing} not found"
    assert failures[ids["p1"]].startswith("NoTextError: ")
    assert classified_ids(volfefe) == sorted([ids["p0"], ids["p3"]])  # p2 was not asked for
    assert f"content_id={missing} failed: ContentNotFound" in err


def test_full_run_progress_lines_then_show_and_stats(volfefe: Volfefe, tmp_path: Path) -> None:
    ids = volfefe.import_posts(
        tmp_path, texts("stocks rally", "tariffs crush markets", " \t ", "fed cuts rates")
    )

    proc = volfefe.run("classify", "--all")  # stderr is a pipe, not a terminal: no bar
    assert proc.returncode == 0, proc.stderr
    progress = [m for line in proc.stderr.splitlines() if (m := PROGRESS.fullmatch(line))]
    assert len(progress) == 3, proc.stderr
    assert [(int(m["i"]), int(m["n"])) for m in progress] == [(1, 3), (2, 3), (3, 3)]
    stored = {row["content_id"]: row for row in volfefe.sql(ROWS)}
    assert sorted(int(m["id"]) for m in progress) == sorted(stored)  # any order, once each
    for m in progress:
        row = stored[int(m["id"])]
        assert m["sentiment"] == row["sentiment"]
        assert m["confidence"] == f"{row['confidence']:.2f}"
    assert proc.stdout.startswith("Done: 3 posts, 3 succeeded, 0 failed")

    shown = volfefe.run("show", str(ids["p1"]), "--json")
    assert shown.returncode == 0, shown.stderr
    both = json.loads(shown.stdout)
    row = stored[ids["p1"]]
    assert both["content"]["text"] == "tariffs crush markets"
    assert both["content"]["classified"] is True
    assert both["classification"]["id"] == row["id"]
    assert both["classification"]["content_id"] == ids["p1"]
    assert both["classification"]["sentiment"] == row["sentiment"]
    assert both["classification"]["confidence"] == pytest.approx(row["confidence"])
    assert set(both["classification"]["meta"]["raw_scores"]) == SENTIMENTS
    empty = json.loads(volfefe.run("show", str(ids["p2"]), "--json").stdout)
    assert empty["classification"] is None

    stats = volfefe.run("stats", "--json")
    assert stats.returncode == 0, stats.stderr
    numbers = json.loads(stats.stdout)
    assert (numbers["total"], numbers["classified"], numbers["unclassified"]) == (4, 3, 0)
    assert numbers["empty_text"] == 1
    assert sum(numbers["distribution"].values()) == 3


def test_killed_run_resumes_without_touching_what_was_stored(volfefe: Volfefe) -> None:
    volfefe.import_file(SAMPLE)
    expected = with_text(volfefe)
    run = volfefe.start("classify", "--all", fault="delay=0.3", batch_size=4)
    eventually(lambda: len(run.progress()) >= 8 or run.proc.poll() is not None, timeout=DEADLINE)
    assert run.proc.poll() is None, run.stderr()
    children = children_of(run.pid)

    os.kill(run.pid, signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    # Once the server has dropped the dead run's session, nothing it sent can still commit.
    eventually(lambda: not volfefe.sql(RUN_CONNECTIONS), timeout=30)
    before = {row["id"]: row["content_id"] for row in volfefe.sql(ROWS)}
    reported = {int(m["id"]) for m in run.progress()}
    assert reported <= set(before.values())  # a progress line means "stored"
    assert len(before) < len(expected)
    assert children, "the run had no worker child while it was classifying"
    eventually(lambda: not any(alive(pid) for pid in children), timeout=30)

    code, summary, err = volfefe.classify_json("--all")
    assert code == 0, err
    assert summary["total"] == summary["succeeded"] == len(expected) - len(before)
    assert_each_post_classified_once(volfefe)
    after = {row["id"]: row["content_id"] for row in volfefe.sql(ROWS)}
    assert {k: after.get(k) for k in before} == before


def test_two_runs_at_once_split_the_posts(volfefe: Volfefe) -> None:
    volfefe.import_file(SAMPLE)
    expected = with_text(volfefe)
    runs = [
        volfefe.start("classify", "--all", "--json", fault="delay=0.05", batch_size=4)
        for _ in range(2)
    ]
    codes = [run.wait() for run in runs]
    assert codes == [0, 0], [run.stderr()[-2000:] for run in runs]
    summaries = [run.summary() for run in runs]

    assert_each_post_classified_once(volfefe)
    assert sum(s["succeeded"] for s in summaries) == len(expected)
    for s in summaries:
        assert s["failed"] == 0 and s["failures"] == []
        # Whatever the other run took is reported as skipped, never as failed.
        assert s["succeeded"] + s["skipped"] == s["total"]
    # Both picked their targets before either stored anything (booting takes seconds), so
    # the runs really overlapped and the claims had to split the work.
    assert [s["total"] for s in summaries] == [len(expected)] * 2


def start_a_slow_run(volfefe: Volfefe, tmp_path: Path) -> tuple[Running, list[int]]:
    """40 sample posts imported, and a `classify --all --json` run under way on them (each
    reply slowed by 0.3 s); the run and the ids of the posts it must classify."""
    subset = tmp_path / "subset.jsonl"
    subset.write_text("".join(SAMPLE.read_text(encoding="utf-8").splitlines(True)[:40]), "utf-8")
    volfefe.import_file(subset)
    expected = with_text(volfefe)
    run = volfefe.start("classify", "--all", "--json", fault="delay=0.3", batch_size=4)
    eventually(lambda: run.progress() or run.proc.poll() is not None, timeout=DEADLINE)
    assert run.proc.poll() is None, run.stderr()
    return run, expected


@pytest.mark.parametrize("when", ["idle", "mid-write"])
def test_dropped_connection_is_reopened_and_the_run_finishes(
    volfefe: Volfefe, tmp_path: Path, when: str
) -> None:
    run, expected = start_a_slow_run(volfefe, tmp_path)

    if when == "idle":  # the run is waiting for the model: the next query finds it cut
        terminated = volfefe.sql(TERMINATE_RUN)
    else:  # the run is inside its write transaction, its INSERT blocked by our lock
        with connect(volfefe.url, autocommit=False) as blocker:
            blocker.execute("LOCK TABLE classifications IN EXCLUSIVE MODE")
            eventually(lambda: volfefe.sql(RUN_BLOCKED), timeout=DEADLINE)
            terminated = volfefe.sql(TERMINATE_RUN)
    assert [row["gone"] for row in terminated] == [True]

    assert run.wait() == 0, run.stderr()[-3000:]
    summary = run.summary()
    assert (summary["succeeded"], summary["failed"], summary["error"]) == (len(expected), 0, None)
    assert_each_post_classified_once(volfefe)
    assert "database connection lost" in run.stderr()
    assert sorted(int(m["id"]) for m in run.progress()) == expected  # one line per post


def test_database_gone_for_good_stops_the_run_with_exit_4_and_the_summary(
    volfefe: Volfefe, tmp_path: Path
) -> None:
    run, expected = start_a_slow_run(volfefe, tmp_path)

    # No new connection gets in (said from another database: not of the current one), and
    # the run's is cut.
    name = conninfo_to_dict(volfefe.url)["dbname"]
    with connect(make_conninfo(volfefe.url, dbname="postgres")) as admin:
        refuse = sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false")
        admin.execute(refuse.format(sql.Identifier(name)))
        cut = admin.execute(
            "SELECT pg_terminate_backend(pid) AS gone FROM pg_stat_activity"
            " WHERE application_name = 'volfefe classify' AND datname = %(name)s",
            {"name": name},
        ).fetchall()
    assert [row["gone"] for row in cut] == [True]

    assert run.wait() == 4, run.stderr()[-3000:]  # DatabaseUnavailable, as docs/cli.md says
    summary = run.summary()
    assert summary["error"].startswith("DatabaseUnavailable: "), summary
    assert 0 < summary["succeeded"] < len(expected), summary
    assert run.err[-1].startswith("DatabaseUnavailable: "), run.stderr()[-3000:]


def test_broken_pool_stops_the_run_with_exit_3_and_the_summary(volfefe: Volfefe) -> None:
    volfefe.import_file(SAMPLE)
    # Every child dies on its first request, and one restart is all the budget allows.
    run = volfefe.start(
        "classify",
        "--all",
        "--json",
        fault="crash@1",
        batch_size=4,
        VOLFEFE_MAX_RESTARTS="1",
        VOLFEFE_REBUILD_BACKOFF="60",
        VOLFEFE_REBUILD_BACKOFF_MAX="60",
    )

    assert run.wait() == 3, run.stderr()[-3000:]  # PoolBroken
    summary = run.summary()
    assert summary["error"].startswith("PoolBroken: "), summary
    assert summary["total"] == len(with_text(volfefe)), summary
    assert run.err[-1].startswith("PoolBroken: "), run.stderr()[-3000:]
    assert classified_ids(volfefe) == []


SPECIAL = [
    "He said \"buy\" and 'sell'",
    "back\\slash \\n \\\\ and C:\\temp\\new",
    "rockets 🚀🚀 flags 🇺🇸 café 日本語 zero\u200bwidth",
    "'; DROP TABLE contents; --",
    "%s %(text)s {text} $1 ? -- /* not a comment */",
    "line one\nline two\ttabbed",
]


def test_special_texts_survive_import_classify_and_show(volfefe: Volfefe, tmp_path: Path) -> None:
    ids = volfefe.import_posts(tmp_path, texts(*SPECIAL))

    code, summary, err = volfefe.classify_json("--all")
    assert code == 0, err
    assert summary["succeeded"] == len(SPECIAL)
    for i, text in enumerate(SPECIAL):
        shown = volfefe.run("show", str(ids[f"p{i}"]), "--json")
        assert shown.returncode == 0, shown.stderr
        both = json.loads(shown.stdout)
        assert both["content"]["text"] == text
        assert both["classification"]["sentiment"] in SENTIMENTS
    assert volfefe.sql("SELECT count(*) AS n FROM contents") == [{"n": len(SPECIAL)}]
