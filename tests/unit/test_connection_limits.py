"""Every database URL volfefe uses carries a connect timeout, keepalives and a statement timeout."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from volfefe.config import Settings
from volfefe.store.connect import resolve_database_url, with_limits


def test_limits_are_added_from_settings() -> None:
    settings = Settings(db_connect_timeout=7, db_statement_timeout=2.5, db_keepalive=12)
    params = conninfo_to_dict(with_limits("postgresql://u@db.example:6543/prod", settings))
    assert params["connect_timeout"] == "7"
    assert (params["keepalives"], params["keepalives_idle"], params["keepalives_count"]) == (
        "1",
        "12",
        "3",
    )
    assert params["keepalives_interval"] == "4"
    assert params["tcp_user_timeout"] == "24000"
    assert params["options"] == "-c statement_timeout=2500"
    assert (params["host"], params["port"], params["dbname"]) == ("db.example", "6543", "prod")


def test_what_the_url_sets_itself_wins() -> None:
    url = "postgresql://u@h/d?connect_timeout=3&options=-c%20statement_timeout%3D9"
    params = conninfo_to_dict(with_limits(url, Settings()))
    assert params["connect_timeout"] == "3"
    assert params["options"] == "-c statement_timeout=9"
    assert params["keepalives"] == "1"


def test_other_options_are_kept_and_a_zero_statement_timeout_adds_none() -> None:
    url = "postgresql://u@h/d?options=-c%20work_mem%3D4MB"
    params = conninfo_to_dict(with_limits(url, Settings()))
    assert params["options"] == "-c work_mem=4MB -c statement_timeout=60000"
    none = conninfo_to_dict(with_limits("postgresql://u@h/d", Settings(db_statement_timeout=0)))
    assert "options" not in none


def test_resolve_database_url_applies_the_limits() -> None:
    url = resolve_database_url(Settings(database_url="postgresql://u@h/d"))
    assert conninfo_to_dict(url)["options"] == "-c statement_timeout=60000"
