"""The shapes an Engine feeds its backend: a lone text padded to a few lengths (so OpenVINO
reuses prepared shapes), batches unpadded, and the warm-up passes made before the first
request. The backend here is a numpy function that records what it is given."""

from __future__ import annotations

import numpy as np
import pytest

from volfefe.child.engine import WARM_UP_LENGTHS, Engine, ModelLoadError
from volfefe.protocol import ItemResult, Ready


class WordTokenizer:
    """One token per word, between [CLS] (101) and [SEP] (102)."""

    class Encoding:
        def __init__(self, ids: list[int]) -> None:
            self.ids = ids

    def encode_batch(self, texts: list[str]) -> list[Encoding]:
        return [self.Encoding([101, *(1000 + len(w) for w in t.split()), 102]) for t in texts]


def engine(single_pad: int, shapes: list[tuple[int, ...]]) -> Engine:
    def predict(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        shapes.append(input_ids.shape)
        # logits from the unmasked tokens only, so padding must not change them
        real = (input_ids * attention_mask).sum(axis=1, keepdims=True) / 1e4
        return np.hstack([real, -real, np.zeros_like(real)]).astype(np.float32)

    labels = ["neutral", "positive", "negative"]
    ready = Ready("m", "m@x", labels, "cpu", 1, 0, 512)
    return Engine(predict, WordTokenizer(), 0, labels, 512, 20_000, 1024, ready, single_pad)


def test_a_lone_text_is_padded_to_the_multiple_and_batches_are_not() -> None:
    shapes: list[tuple[int, ...]] = []
    padded, plain = engine(16, shapes), engine(1, [])
    text = "tariffs " * 15  # 17 tokens
    alone = padded.classify([text])
    assert shapes == [(1, 32)]
    assert alone == plain.classify([text])  # padding is masked: the same scores
    shapes.clear()
    padded.classify(["stocks rally", "oil flat today"])
    assert shapes == [(2, 5)]


def test_padding_never_goes_past_the_model_length() -> None:
    shapes: list[tuple[int, ...]] = []
    [result] = engine(16, shapes).classify(["word " * 600])
    assert shapes == [(1, 512)]
    assert isinstance(result, ItemResult) and result.truncated


def test_warm_up_runs_one_pass_per_length_before_any_request() -> None:
    shapes: list[tuple[int, ...]] = []
    engine(16, shapes).warm_up()
    assert shapes == [(1, n) for n in WARM_UP_LENGTHS]


def test_a_model_that_fails_its_warm_up_cannot_serve() -> None:
    def broken(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        raise RuntimeError("bad kernel")

    failing = engine(1, [])
    failing.predict = broken
    with pytest.raises(ModelLoadError, match="fails a warm-up pass: bad kernel"):
        failing.warm_up()


def test_unlike_lengths_go_in_passes_of_their_own_where_padding_costs_more() -> None:
    shapes: list[tuple[int, ...]] = []
    short = ["stocks rally", "oil flat today", "bonds up"]  # 4, 5 and 4 tokens
    long = "tariffs " * 58  # 60 tokens
    results = engine(1, shapes).classify([long, *short])
    assert shapes == [(3, 5), (1, 60)]  # not (4, 60): 240 padded tokens for 75 real
    assert results == [engine(1, []).classify([text])[0] for text in [long, *short]]
    shapes.clear()
    like = ["stocks rally", "oil flat today", "bonds up today"]  # 4, 5 and 5 tokens
    engine(1, shapes).classify(like)
    assert shapes == [(3, 5)]  # one more pass would cost more than one padded token
