"""Protocol round trips and the text rules shared by parent and child."""

from __future__ import annotations

import pytest

from volfefe.protocol import (
    DecodeError,
    ItemError,
    ItemResult,
    Ready,
    Reply,
    Request,
    clean_text,
    decode_ready,
    decode_reply,
    decode_request,
    encode,
    is_blank,
)


def test_request_round_trip() -> None:
    req = Request(7, ["Stocks rally", "", "émoji 🚀", 'quote " and \\ backslash'])
    assert decode_request(encode(req)) == req


def test_reply_round_trip_with_item_error() -> None:
    reply = Reply(
        3,
        [
            ItemResult(
                "positive", 0.9, {"positive": 0.9, "negative": 0.05, "neutral": 0.05}, False, 5
            ),
            ItemError("EmptyText", "nothing"),
        ],
    )
    assert decode_reply(encode(reply), expect_id=3, expect_items=2) == reply


def test_ready_round_trip() -> None:
    ready = Ready("m", "m@abc", ["neutral", "positive", "negative"], "cpu", 2, 123, 512)
    assert decode_ready(encode(ready)) == ready


def test_every_message_is_one_line() -> None:
    line = encode(Request(1, ["a\nb\r\nc"]))
    assert line.count(b"\n") == 1 and line.endswith(b"\n")


@pytest.mark.parametrize(
    "line, match",
    [
        (b"not json\n", "not JSON"),
        (b"[1, 2]\n", "JSON object"),
        (b'{"id": "x", "texts": []}\n', "integer 'id'"),
        (b'{"id": 1, "texts": [1]}\n', "list of strings"),
    ],
)
def test_bad_requests_are_named(line: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_request(line)


def test_reply_with_wrong_id_is_refused() -> None:
    with pytest.raises(DecodeError, match="does not match request id 2"):
        decode_reply(encode(Reply(1, [ItemError("X", "y")])), expect_id=2, expect_items=1)


def test_reply_with_wrong_item_count_is_refused() -> None:
    with pytest.raises(DecodeError, match="1 results for 2 texts"):
        decode_reply(encode(Reply(1, [ItemError("X", "y")])), expect_id=1, expect_items=2)


def test_lone_surrogates_become_replacement_characters() -> None:
    cleaned = clean_text("ok \ud83d ok")
    assert cleaned == "ok \ufffd ok"
    encode(Request(1, [cleaned]))  # must not raise


@pytest.mark.parametrize(
    "text, blank",
    [
        ("", True),
        ("   \n\t", True),
        ("\x00\x00", True),
        (" a ", False),
        ("🚀", False),
    ],
)
def test_blank_text(text: str, blank: bool) -> None:
    assert is_blank(text) is blank
