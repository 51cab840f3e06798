#!/usr/bin/env python3
"""Write a tiny, seeded, random BERT sentiment model with finbert-tone's label layout.

    python scripts/make_tiny_model.py OUT_DIR

The model has 2 layers and hidden size 32 over a vocabulary of a few hundred words, loads in
well under a second, and has the production `id2label` (0 Neutral, 1 Positive, 2 Negative) and
maximum length (512 tokens). Its predictions are meaningless but deterministic: tests use it to
exercise the real transformers/torch code path without downloading anything.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

WORDS = """
the a an and or but of to in on for with at by from up down over under about into after before
is are was were be been being have has had do does did will would can could should may might
must shall not no yes very more most less least much many few all some any every each this that
these those it its we our us you your they their them he his she her i me my who what when
where why how which stock stocks market markets rally rallies crash crashes surge plunge soar
soars tank tanks rise rises fall falls gain gains loss losses profit profits revenue earnings
growth recession inflation deflation rates rate cut cuts hike hikes fed reserve bank banks bond
bonds yield yields dollar dollars euro yen gold oil gas energy tariff tariffs trade deal deals
china mexico canada europe jobs job unemployment wages tax taxes budget deficit debt economy
economic great good bad terrible tremendous beautiful strong weak record high low best worst
big small huge massive total disaster win winning lose losing buy sell investors investor
company companies business businesses price prices cost costs consumer consumers demand supply
rally news report reports today tomorrow week month year quarter percent billion million
trillion positive negative neutral up down flat steady stable volatile risk risks uncertainty
confidence optimism fear panic boom bust bubble crypto bitcoin apple tesla amazon google
microsoft nvidia america american country nation people president congress senate vote election
policy policies new old first last next back again now never always still just only even also
so too rallying crashing dropping jumping booming falling growing shrinking hiring firing
""".split()  # noqa: SIM905 - a word list reads better as text
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ID2LABEL = {0: "Neutral", 1: "Positive", 2: "Negative"}


def vocabulary() -> list[str]:
    """Special tokens, the words above, and single characters so unknown words split."""
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?$%'\"-#@")
    subwords = ["##" + c for c in chars]
    seen: dict[str, None] = dict.fromkeys(SPECIALS + WORDS + chars + subwords)
    return list(seen)


def make_tiny_model(out_dir: Path, seed: int = 1234) -> Path:
    """Build the model and tokenizer and save both into `out_dir` (created if missing)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    vocab = vocabulary()
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp) / "vocab.txt"
        vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        tokenizer = BertTokenizerFast(str(vocab_file), do_lower_case=True, model_max_length=512)
        tokenizer.save_pretrained(out_dir)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=3,
        initializer_range=0.6,
        id2label=ID2LABEL,
        label2id={v: k for k, v in ID2LABEL.items()},
    )
    model = BertForSequenceClassification(config)
    # A wide init makes outputs depend visibly on the input; a damped head keeps them off 0/1.
    with torch.no_grad():
        model.classifier.weight.mul_(0.25)
    model.eval()
    model.save_pretrained(out_dir)
    return out_dir


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    print(make_tiny_model(args.out_dir, args.seed))


if __name__ == "__main__":
    main()
