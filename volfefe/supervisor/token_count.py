"""Tokens of a text as the child will count them, known in the orchestrator before a call.

The pool composes its calls by tokens (`VOLFEFE_FORWARD_TOKENS` per run of a caller's texts,
`VOLFEFE_BATCH_TOKENS` for what the queue gathers), and the child cuts each call into forward
passes of padded tokens. Counted with a guess of about four characters a token,
texts dense in numbers, URLs or tickers are under-counted: a call meant to be one forward
pass becomes a full pass and a small one, and texts of unlike length share a call. So the
pool counts with the model's own tokenizer when it has its file: the `tokenizer.json` of
the export the children load (onnx, openvino) or of a local model folder (torch). Only the
`tokenizers` library is needed (no torch, no transformers), and a text is encoded on its own
(`encode`, not `encode_batch`), so no tokenizer thread pool exists in a process that forks
children. Without the file (torch with a hub model), or when it fails to load, the pool
guesses as before (`estimate_tokens`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from volfefe.supervisor.batching import MAX_TOKENS_PER_TEXT, estimate_tokens

logger = logging.getLogger(__name__)
TOKENIZER_FILE = "tokenizer.json"


class TokenCounter:
    """Counts a text's tokens (special tokens included, at most `max_tokens`, as the child
    truncates) with `tokenizer` (a tokenizers.Tokenizer), or estimates them without one."""

    def __init__(self, tokenizer: Any | None = None, max_tokens: int = MAX_TOKENS_PER_TEXT) -> None:
        if tokenizer is not None:
            tokenizer.no_truncation()
            tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._max_tokens = max_tokens

    @property
    def exact(self) -> bool:
        """True when counting with the model's tokenizer, False when estimating."""
        return self._tokenizer is not None

    def count(self, text: str) -> int:
        """The tokens of `text`, capped at the model's maximum.

        >>> TokenCounter().count("stocks rally")  # no tokenizer: the estimate
        5
        """
        if self._tokenizer is None:
            return estimate_tokens(text)
        return min(self._max_tokens, len(self._tokenizer.encode(text).ids))

    def count_all(self, texts: Sequence[str]) -> list[int]:
        """The tokens of each of `texts`."""
        return [self.count(text) for text in texts]

    @classmethod
    def from_file(cls, path: Path) -> TokenCounter:
        """A counter with the tokenizer saved at `path`, or an estimating one (logged) when
        it cannot be loaded."""
        try:
            from tokenizers import Tokenizer

            return cls(Tokenizer.from_file(str(path)))
        except Exception as exc:  # any file a tokenizer cannot read: batching only gets worse
            logger.warning("cannot load %s (%s); estimating tokens from characters", path, exc)
            return cls()

    @classmethod
    def for_children(cls, child_args: Sequence[str], model: str) -> TokenCounter:
        """The counter for children started with `child_args` on `model`: the tokenizer of
        their export folder, else of the local model folder, else the estimate."""
        args = list(child_args)
        if "--export-dir" in args:
            folder = Path(args[args.index("--export-dir") + 1])
        else:
            folder = Path(model)
        path = folder / TOKENIZER_FILE
        if not path.is_file():
            logger.info("no %s for %s: estimating tokens from characters", TOKENIZER_FILE, model)
            return cls()
        return cls.from_file(path)
