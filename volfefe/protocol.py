"""The wire protocol between the orchestrator and `worker/classify.py`: one JSON object a line.

```
parent                                         child (worker/classify.py --serve)
                                               loads the model
        <── {"type":"ready","model":..,"model_version":..,"labels":[..],"device":..,
             "threads":..,"pid":..,"max_length":..}
{"id":7,"texts":["Stocks rally","",...]} ──>
        <── {"type":"result","id":7,"results":[{"sentiment":"positive","confidence":0.93,
             "raw_scores":{...},"truncated":false,"tokens":4},
             {"error":{"type":"EmptyText","message":"..."}}, ...]}
{"id":8,"texts":[]} ──>                         (a ping: the pool checks an idle child)
        <── {"type":"result","id":8,"results":[]}
not json ──>
        <── {"type":"error","id":null,"error":{"type":"BadRequest","message":"..."}}
EOF on stdin ──>                               exits 0
```

Replies come in request order, one line per request, each carrying the request's id; a child
started with `--preempt layers` (VOLFEFE_PREEMPT) may answer a shorter request before a longer
one sent earlier, so a reader that sends more than one request at a time matches replies by
id. This module is stdlib + orjson only: the child imports it before torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

EXIT_BOOT_FAILED = 3
"""A child that exits with this status cannot start (bad model, bad labels): do not restart it."""

EXIT_GUARD_REFUSED = 4
"""The exporter's status when the accuracy guard refused a guarded export."""

EXIT_NO_BF16 = 6
"""The exporter's status for a bf16 scheme on a CPU without bf16 arithmetic."""

EMPTY_TEXT = "EmptyText"
"""Item error type: the text is blank (permanent)."""

FORWARD_FAILED = "ForwardPassFailed"
"""Item error type: the forward pass raised, e.g. out of memory (transient: the child lives on)."""

BAD_SCORES = "BadScores"
"""Item error type: the model gave NaN or infinite scores for this text (permanent)."""

DEFAULT_MODEL = "yiyanghkust/finbert-tone"
"""The model used when none is configured (a hub id)."""

# Defaults the child shares with Settings (which declares the settings: volfefe/config.py).
DEFAULT_MAX_CHARS = 20_000
"""Characters of a text sent to a child, at most (VOLFEFE_MAX_CHARS)."""
DEFAULT_FORWARD_TOKENS = 1024
"""Padded tokens per forward pass (VOLFEFE_FORWARD_TOKENS)."""
DEFAULT_SHORT_TOKENS = 64
"""Tokens per text, at most, of a short post (VOLFEFE_SHORT_TOKENS)."""
DEFAULT_HUB_TIMEOUT = 10.0
"""Seconds the model hub may take to answer (VOLFEFE_HUB_TIMEOUT)."""

SENTIMENTS = ("positive", "negative", "neutral")
"""The only sentiment names, always lower-case, in display order."""

FINBERT_ORDER = ("neutral", "positive", "negative")
"""finbert-tone's class order, used for models whose labels are generic (LABEL_0..2)."""

QUANTIZE_SCHEMES = ("none", "int8", "int8-static", "bf16", "int8-static-bf16")
"""The numerics a model can run with (`VOLFEFE_QUANTIZE`): fp32, dynamic int8 weights, static
int8 (weights and activations), and, on OpenVINO, bf16 arithmetic for the float parts."""

GUARDED_SCHEMES = ("int8-static", "bf16", "int8-static-bf16")
"""Schemes only OpenVINO runs, whose export must pass the accuracy guard against fp32."""

PREEMPT_MODES = ("off", "layers")
"""How a child schedules the requests it holds (`VOLFEFE_PREEMPT`): one whole pass at a time,
or layer by layer with shorter requests answered between two layers of a long one."""

STATIC_SCHEMES = ("int8-static", "int8-static-bf16")
"""Schemes calibrated on texts (NNCF's static int8)."""


def f32_counterpart(scheme: str) -> str:
    """The scheme without bf16 arithmetic: what runs where bf16 cannot.

    >>> f32_counterpart("bf16"), f32_counterpart("int8-static-bf16"), f32_counterpart("int8")
    ('none', 'int8-static', 'int8')
    """
    return "none" if scheme == "bf16" else scheme.removesuffix("-bf16")


def default_export_cache(env: Mapping[str, str]) -> Path:
    """Where model exports (ONNX, OpenVINO) are cached: `$VOLFEFE_EXPORT_CACHE` (or its old
    name `$VOLFEFE_ONNX_CACHE`), else `$HF_HOME/volfefe-onnx` (`~/.cache/huggingface/
    volfefe-onnx`), next to the Hugging Face cache."""
    for name in ("VOLFEFE_EXPORT_CACHE", "VOLFEFE_ONNX_CACHE"):
        if env.get(name):
            return Path(env[name])
    hf_home = env.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    return Path(hf_home) / "volfefe-onnx"


@dataclass(frozen=True, slots=True)
class Ready:
    """The child's first line: the model is loaded and requests may follow."""

    model: str
    model_version: str
    labels: list[str]
    device: str
    threads: int
    pid: int
    max_length: int


@dataclass(frozen=True, slots=True)
class Request:
    """Classify `texts`; the reply carries the same `id`."""

    id: int
    texts: list[str]


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why one text of a request could not be classified (the rest of the request still is)."""

    type: str
    message: str
    traceback: str = ""


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The scores for one text; `model_version` is in the ready line, not repeated here."""

    sentiment: str
    confidence: float
    raw_scores: dict[str, float]
    truncated: bool
    tokens: int


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one request: one item a text, or `error` for a request that was unusable."""

    id: int | None
    results: list[ItemResult | ItemError] = field(default_factory=list)
    error: ItemError | None = None


class DecodeError(ValueError):
    """A line is not a valid protocol message."""


def encode(message: Ready | Request | Reply) -> bytes:
    """One message as one line of JSON, newline included.

    >>> encode(Request(1, ["up"]))
    b'{"id":1,"texts":["up"]}\\n'
    """
    if isinstance(message, Ready):
        body: dict[str, Any] = {"type": "ready", **_fields(message)}
    elif isinstance(message, Request):
        body = {"id": message.id, "texts": message.texts}
    elif message.error is not None:
        body = {"type": "error", "id": message.id, "error": _fields(message.error)}
    else:
        body = {
            "type": "result",
            "id": message.id,
            "results": [_encode_item(item) for item in message.results],
        }
    return orjson.dumps(body) + b"\n"


def decode_ready(line: bytes) -> Ready:
    """Parse the child's ready line."""
    data = _load(line)
    if data.get("type") != "ready":
        raise DecodeError("expected a ready line")
    try:
        return Ready(
            model=str(data["model"]),
            model_version=str(data["model_version"]),
            labels=[str(x) for x in data["labels"]],
            device=str(data["device"]),
            threads=int(data["threads"]),
            pid=int(data["pid"]),
            max_length=int(data["max_length"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"bad ready line: {exc!r}") from None


def decode_request(line: bytes) -> Request:
    """Parse a request line; raises DecodeError naming what is wrong."""
    data = _load(line)
    req_id = data.get("id")
    texts = data.get("texts")
    if not isinstance(req_id, int) or isinstance(req_id, bool):
        raise DecodeError("request needs an integer 'id'")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise DecodeError("request needs 'texts', a list of strings")
    return Request(req_id, texts)


def reply_id(line: bytes) -> object:
    """The id a reply line carries, before it is checked (a reader of several requests in
    flight matches the reply to its request by it).

    >>> reply_id(b'{"type":"result","id":7,"results":[]}')
    7
    """
    return _load(line).get("id")


def decode_reply(line: bytes, expect_id: int, expect_items: int) -> Reply:
    """Parse a reply line and check it answers request `expect_id` with `expect_items` items."""
    data = _load(line)
    kind = data.get("type")
    if data.get("id") != expect_id:
        raise DecodeError(f"reply id {data.get('id')!r} does not match request id {expect_id}")
    try:
        if kind == "error":
            return Reply(expect_id, error=_decode_error(data["error"]))
        if kind != "result":
            raise DecodeError(f"unknown reply type {kind!r}")
        items = [_decode_item(x) for x in data["results"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"malformed reply: {exc!r}") from None
    if len(items) != expect_items:
        raise DecodeError(f"reply has {len(items)} results for {expect_items} texts")
    return Reply(expect_id, items)


def clean_text(text: str) -> str:
    """Make any Python string safe to send: lone surrogates become U+FFFD.

    NUL and other control characters are kept; the tokenizer drops them.

    >>> clean_text("ok \\ud800 ok")
    'ok \\ufffd ok'
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return (
            text.encode("utf-8", "surrogatepass")
            .decode("utf-8", "replace")
            .replace("\ufffd\ufffd\ufffd", "\ufffd")
        )
    return text


def is_blank(text: str) -> bool:
    """True when there is nothing to classify: empty, or only whitespace and NUL characters.

    >>> is_blank(" \\n\\x00"), is_blank("up")
    (True, False)
    """
    return not text.replace("\x00", "").strip()


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def _encode_item(item: ItemResult | ItemError) -> dict[str, Any]:
    if isinstance(item, ItemError):
        return {"error": _fields(item)}
    return _fields(item)


def _decode_error(data: dict[str, Any]) -> ItemError:
    return ItemError(
        type=str(data["type"]),
        message=str(data["message"]),
        traceback=str(data.get("traceback", "")),
    )


def _decode_item(data: dict[str, Any]) -> ItemResult | ItemError:
    if "error" in data:
        return _decode_error(data["error"])
    return ItemResult(
        sentiment=str(data["sentiment"]),
        confidence=float(data["confidence"]),
        raw_scores={str(k): float(v) for k, v in data["raw_scores"].items()},
        truncated=bool(data["truncated"]),
        tokens=int(data["tokens"]),
    )


def _load(line: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DecodeError("a message must be a JSON object")
    return data
