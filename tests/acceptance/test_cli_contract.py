"""The command line of docs/cli.md, run the way users meet it: `python -m volfefe` processes.

Each row of the exit-code table (0, 1, 2, 3, 4, 130) and each documented option has a test
here or in the other acceptance files (test_cli_classify, test_cli_predict, test_cli_eval).
Errors are checked for their one shape: `TypeName: message` as the last line of stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.test_cli_classify import ROWS, SAMPLE, Volfefe, texts
from tests.helpers import eventually, invoke_cli
from tests.store.helpers import incompressible, post, write_jsonl

DEADLINE = 120.0
SENTIMENTS = {"positive", "negative", "neutral"}


def last_error(stderr: str) -> str:
    """The `TypeName: message` line that ends stderr."""
    return stderr.strip().splitlines()[-1]


def test_version_help_and_shell_completion(volfefe: Volfefe) -> None:
    version = volfefe.run("--version")
    assert (version.returncode, version.stdout) == (0, "volfefe, version 0.1.0\n")
    helped = volfefe.run("-h")
    assert helped.returncode == 0
    for command in ("predict", "classify", "reclassify", "export", "stats", "db", "jobs"):
        assert f"  {command} " in helped.stdout
    bare = volfefe.run("db")  # a group without its command: its help, as a usage error
    assert bare.returncode == 2
    assert (
        bare.stderr.startswith("Usage: volfefe db [OPTIONS] COMMAND") and "  stop " in bare.stderr
    )
    completion = subprocess.run(
        [sys.executable, "-m", "volfefe"],
        env={**volfefe.env(), "_VOLFEFE_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert completion.returncode == 0 and "_volfefe_completion()" in completion.stdout
    words = subprocess.run(
        [sys.executable, "-m", "volfefe"],
        env={
            **volfefe.env(),
            "_VOLFEFE_COMPLETE": "bash_complete",
            "COMP_WORDS": "volfefe recl",
            "COMP_CWORD": "1",
        },
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert words.stdout.split() == ["plain,reclassify"]


def test_exit_1_import_with_rejected_rows(volfefe: Volfefe, tmp_path: Path) -> None:
    bad = write_jsonl(
        tmp_path / "bad.jsonl", [post("ok"), {"source": "x"}, post("d", published_at="soon")]
    )
    proc = volfefe.run("import", str(bad))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("inserted 1, ")
    assert proc.stderr.splitlines() == [
        "line 2: missing external_id",
        "line 3: published_at is not a date: 'soon'",
    ]


def test_exit_1_import_rejects_an_over_long_key_and_stores_the_rest(
    volfefe: Volfefe, tmp_path: Path
) -> None:
    long_id = incompressible(3000, seed=0)
    path = write_jsonl(tmp_path / "long.jsonl", [post("a"), post(long_id), post("b")])
    proc = volfefe.run("import", str(path))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.startswith("inserted 2, ")
    assert proc.stderr.splitlines() == [
        "line 2: external_id is 3,000 bytes long in UTF-8, over the limit of 2,000 bytes"
    ]
    assert [row["external_id"] for row in volfefe.sql("SELECT external_id FROM contents")] == [
        "a",
        "b",
    ]


def test_exit_1_unknown_ids_are_named_errors(volfefe: Volfefe, tmp_path: Path) -> None:
    ids = volfefe.import_posts(tmp_path, texts("stocks rally"))

    shown = volfefe.run("show", "9999")
    assert shown.returncode == 1
    assert last_error(shown.stderr) == "ContentNotFound: content 9999 not found"

    queued = volfefe.run("jobs", "enqueue", "--ids", f"{ids['p0']},9999", "--json")
    assert queued.returncode == 1, queued.stderr
    report = json.loads(queued.stdout)
    assert (report["queued"], report["not_found"]) == (1, [9999])
    assert last_error(queued.stderr) == "ContentNotFound: content 9999 not found"
    args = [row["args"] for row in volfefe.sql("SELECT args FROM procrastinate_jobs")]
    assert args == [{"content_id": ids["p0"]}]  # no job that could only fail later

    retried = volfefe.run("jobs", "retry", "12345")
    assert retried.returncode == 1
    assert retried.stdout == ""
    assert last_error(retried.stderr) == "JobNotFound: job 12345 not found"


@pytest.mark.parametrize(
    "args, env, error",
    [
        (("stats", "--threshold", "2"), {}, "UsageError: Invalid value for '--threshold'"),
        (
            ("eval", "x.csv", "--compare", "fp16"),
            {},
            "UsageError: Invalid value for '--compare': 'fp16' is not one of 'int8', "
            "'int8-static', 'bf16', 'int8-static-bf16', 'torch', 'onnx', 'openvino'",
        ),
        (
            ("stats",),
            {"VOLFEFE_WORKERS": "many"},
            "ConfigError: VOLFEFE_WORKERS must be a whole number, got 'many'",
        ),
        (
            ("stats",),
            {"VOLFEFE_BATCH_SIZE": "0"},
            "ConfigError: VOLFEFE_BATCH_SIZE='0': batch_size must be >= 1, got 0",
        ),
        (
            ("--call-timeout", "-1", "stats"),
            {},
            "ConfigError: --call-timeout: call_timeout must be > 0, got -1.0",
        ),
        (("-v", "-q", "stats"), {}, "UsageError: -v and -q cannot be used together"),
        (
            ("--backend", "torch", "eval", "{csv}", "--compare", "torch"),
            {},
            "UsageError: --compare torch compares the configured model with itself",
        ),
        (
            ("model", "export", "--quantize", "int4"),
            {},
            "UsageError: Invalid value for '--quantize'",
        ),
        (
            ("jobs", "enqueue", "--ids", "99999999999999999999"),
            {},
            "UsageError: Invalid value for '--ids': expected comma-separated positive ids (at "
            "most 9223372036854775807)",
        ),
    ],
    ids=[
        "bad-option",
        "bad-compare",
        "env-not-a-number",
        "env-out-of-range",
        "option-out-of-range",
        "verbose-and-quiet",
        "compare-with-itself",
        "bad-quantize",
        "id-past-bigint",
    ],
)
def test_exit_2_usage_and_config_errors_name_what_is_wrong(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], error: str
) -> None:
    # In this process (each fails before a database or a model is needed); the real process
    # gives the same status and line (test_exit_2_in_a_real_process).
    labelled = tmp_path / "l.csv"
    labelled.write_text("text,label\nstocks,positive\n", encoding="utf-8")
    argv = [str(labelled) if a == "{csv}" else a for a in args]
    invoked = invoke_cli(*argv, env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", **env})
    assert invoked.code == 2, invoked.stderr
    assert last_error(invoked.stderr).startswith(error), invoked.stderr
    assert "Traceback" not in invoked.stderr


def test_exit_2_in_a_real_process(volfefe: Volfefe) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "volfefe", "--call-timeout", "-1", "stats"],
        env=volfefe.env(),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "ConfigError: --call-timeout: call_timeout must be > 0, got -1.0\n"


def test_exit_4_database_unavailable_or_behind(volfefe: Volfefe, empty_database_url: str) -> None:
    down = subprocess.run(
        [sys.executable, "-m", "volfefe", "stats"],
        env={**volfefe.env(), "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert down.returncode == 4, down.stderr
    assert down.stderr.startswith(  # libpq's own message follows, over several lines
        "DatabaseUnavailable: cannot connect to PostgreSQL at host 127.0.0.1 port 1"
    )
    behind = subprocess.run(
        [sys.executable, "-m", "volfefe", "show", "1"],
        env={**volfefe.env(), "DATABASE_URL": empty_database_url},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert behind.returncode == 4, behind.stderr
    assert last_error(behind.stderr).startswith("SchemaOutdated: the database schema is behind")


def test_exit_4_db_status_on_a_schema_behind_says_to_migrate(empty_database_url: str) -> None:
    def status() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "volfefe", "db", "status"],
            env={**os.environ, "DATABASE_URL": empty_database_url},
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )

    behind = status()
    assert behind.returncode == 4, behind.stderr
    assert "migration(s) pending" in behind.stdout.splitlines()[-1]
    error = last_error(behind.stderr)
    assert error.startswith("SchemaOutdated: the database schema is behind")
    assert error.endswith("run `python -m volfefe db migrate`")
    migrated = subprocess.run(
        [sys.executable, "-m", "volfefe", "db", "migrate"],
        env={**os.environ, "DATABASE_URL": empty_database_url},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert migrated.returncode == 0, migrated.stderr
    current = status()
    assert (current.returncode, current.stdout.splitlines()[-1]) == (0, "schema: up to date")


def test_exit_130_ctrl_c_during_classify_is_prompt_and_quiet(volfefe: Volfefe) -> None:
    volfefe.import_file(SAMPLE)
    # Each reply 0.5 s late (41 calls): the run cannot finish before the SIGINT reaches it,
    # even when a loaded machine shows the first progress line late.
    running = volfefe.start("classify", "--all", "--json", batch_size=4, fault="delay=0.5")
    eventually(lambda: running.progress(), timeout=DEADLINE)
    running.proc.send_signal(signal.SIGINT)
    code = running.wait(timeout=20)  # promptly: well under the 30 s call timeout
    assert code == 130, running.stderr()
    summary = running.summary()
    assert summary["interrupted"] is True and summary["succeeded"] >= 1
    noise = ("Task exception was never retrieved", "Task was destroyed", "Event loop is closed")
    assert not any(n in running.stderr() for n in noise), running.stderr()
    assert "Traceback" not in running.stderr()


def test_predict_dash_answers_each_line_as_it_arrives(volfefe: Volfefe) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "volfefe", "predict", "-"],
        env=volfefe.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    answers: list[dict[str, object]] = []
    reader = threading.Thread(
        target=lambda: answers.extend(json.loads(line) for line in proc.stdout),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        # The feed stays open: each line must be answered before the next one is written.
        for n, text in enumerate(["stocks rally", "", "tariffs crush markets"], start=1):
            proc.stdin.write(text.encode() + b"\n")
            proc.stdin.flush()
            eventually(lambda n=n: len(answers) >= n, timeout=DEADLINE)  # type: ignore[misc]
        assert answers[0]["sentiment"] in SENTIMENTS
        assert answers[1] == {
            "error": {
                "type": "NoTextError",
                "message": "no text to classify: the text is empty or whitespace only",
            }
        }
        assert answers[2]["sentiment"] in SENTIMENTS
        proc.stdin.close()
        assert proc.wait(DEADLINE) == 1  # one line failed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_export_since_and_until_take_a_zone_as_export_writes_it(
    volfefe: Volfefe, tmp_path: Path
) -> None:
    records = [
        post("a", "stocks rally", published_at="2025-12-19T21:00:00Z"),
        post("b", "tariffs", published_at="2025-12-20T00:30:00+02:00"),  # 22:30 UTC
        post("c", "fed cuts", published_at="2025-12-20T01:00:00Z"),
    ]
    volfefe.import_posts(tmp_path, records)

    def exported(*args: str) -> list[str]:
        proc = volfefe.run("export", "--unclassified", *args)
        assert proc.returncode == 0, proc.stderr
        return [json.loads(line)["external_id"] for line in proc.stdout.splitlines()]

    assert exported("--since", "2025-12-20T00:00:00Z") == ["c"]
    assert exported("--since", "2025-12-20T00:00:00+02:00") == ["b", "c"]
    assert exported("--until", "2025-12-20T00:00:00+02:00") == ["a"]
    assert exported("--since", "2025-12-20") == ["c"]  # no zone: UTC
    assert exported("--until", "2025-12-19 22:00:00") == ["a"]
    [written] = [
        json.loads(line)["published_at"]
        for line in volfefe.run("export", "--unclassified").stdout.splitlines()
        if json.loads(line)["external_id"] == "b"
    ]
    assert exported("--since", written) == ["b", "c"]  # what export writes, it reads
    bad = volfefe.run("export", "--since", "soon")
    assert bad.returncode == 2
    assert "'soon'" in bad.stderr and "ISO 8601" in bad.stderr


def test_export_stats_by_and_reclassify(volfefe: Volfefe, tmp_path: Path) -> None:
    records = [
        post("a", "stocks rally", published_at="2025-01-01T10:00:00Z"),
        post("b", "tariffs crush markets", published_at="2025-01-01T23:00:00Z"),
        post("c", "fed cuts rates", published_at="2025-01-02T08:00:00+00:00"),
        post("d", "   "),
    ]
    ids = volfefe.import_posts(tmp_path, records)
    assert volfefe.classify_json("--all")[0] == 0
    stored = {row["content_id"]: row for row in volfefe.sql(ROWS)}

    jsonl = volfefe.run("export")
    assert jsonl.returncode == 0, jsonl.stderr
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["content_id"] for r in rows] == sorted(stored)
    assert (
        rows[0]["text"] == "stocks rally" and rows[0]["sentiment"] == stored[ids["a"]]["sentiment"]
    )
    assert jsonl.stderr.strip() == "exported 3 posts"

    one = stored[ids["b"]]["sentiment"]
    filtered = volfefe.run(
        "export", "--sentiment", one, "--since", "2025-01-01", "--until", "2025-01-02"
    )
    wanted = [i for i in (ids["a"], ids["b"]) if stored[i]["sentiment"] == one]
    assert [json.loads(x)["content_id"] for x in filtered.stdout.splitlines()] == wanted

    version = (
        stored[ids["a"]]["sentiment"]
        and volfefe.sql("SELECT model_version FROM classifications LIMIT 1")[0]["model_version"]
    )
    same = volfefe.run("export", "--model-version", version, "--min-confidence", "0")
    assert len(same.stdout.splitlines()) == 3
    other = volfefe.run("export", "--model-version", "another@model")
    assert (other.returncode, other.stdout) == (0, "")
    sure = volfefe.run("export", "--min-confidence", "0.5")
    assert len(sure.stdout.splitlines()) == sum(r["confidence"] >= 0.5 for r in stored.values())
    threshold = json.loads(volfefe.run("stats", "--threshold", "0.5", "--json").stdout)
    assert threshold["high_confidence"] == len(sure.stdout.splitlines())
    table = volfefe.run("show", str(ids["a"]))
    assert table.returncode == 0 and "classification: " in table.stdout

    out = tmp_path / "all.csv"
    csv_run = volfefe.run("export", "--format", "csv", "--unclassified", "-o", str(out))
    assert csv_run.returncode == 0, csv_run.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("content_id,source,external_id,author,published_at,text,")
    assert len(lines) == 5 and lines[-1].startswith(f"{ids['d']},")  # the empty post too

    by_day = json.loads(volfefe.run("stats", "--by", "day", "--json").stdout)
    assert [(r["key"], r["total"]) for r in by_day["rows"]] == [
        ("2025-01-01", 2),
        ("2025-01-02", 1),
    ]
    by_model = json.loads(volfefe.run("stats", "--by", "model_version", "--json").stdout)
    (before,) = by_model["rows"]
    assert before["total"] == 3 and not before["key"].endswith("+int8")

    again = volfefe.run("--backend", "torch", "--quantize", "int8", "reclassify", "--all", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["total"], summary["reclassified"], summary["failed"]) == (3, 3, 0)
    assert summary["model_version"].endswith("+int8")
    versions = {
        row["model_version"] for row in volfefe.sql("SELECT model_version FROM classifications")
    }
    assert versions == {summary["model_version"]}
    nothing = volfefe.run("--backend", "torch", "--quantize", "int8", "reclassify", "--json")
    assert json.loads(nothing.stdout)["total"] == 0  # nothing is outdated any more
    missing = volfefe.run("reclassify", "--ids", "9999", "--json")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["failures"] == [
        {"content_id": 9999, "reason": "ContentNotFound: content 9999 not found"}
    ]


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    """A data folder outside pytest's basetemp (see tests/fixtures_db.py), stopped and removed."""
    folder = Path(tempfile.mkdtemp(prefix="volfefe-test-db-stop-"))
    os.chmod(folder, 0o755)  # the server may run as another user (pgserver, when we are root)
    yield folder
    from tests.fixtures_db import stop_embedded

    stop_embedded(folder / "pgdata")
    shutil.rmtree(folder, ignore_errors=True)


def test_db_status_and_stop_manage_the_embedded_server(embedded_data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["VOLFEFE_DATA_DIR"] = str(embedded_data_dir)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "volfefe", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )

    pgdata = embedded_data_dir / "pgdata"
    assert run("db", "status").stdout == f"database: embedded server in {pgdata}: not running\n"
    assert run("db", "migrate").returncode == 0
    status = run("db", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0].startswith(
        f"database: embedded server in {pgdata}: running"
    )
    assert status.stdout.splitlines()[1] == "schema: up to date"
    stopped = run("db", "stop")
    assert (stopped.returncode, stopped.stdout) == (0, f"stopped the embedded server in {pgdata}\n")
    again = run("db", "status")
    assert again.returncode == 1 and "not running" in again.stdout
    assert run("stats", "--json").returncode == 0  # the next command starts it again
