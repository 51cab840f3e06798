#!/usr/bin/env python3
"""Write a random, seeded model with finbert-tone's exact architecture, for benchmarks.

    python scripts/make_finbert_like_model.py OUT_DIR [--seed N]

`yiyanghkust/finbert-tone` is a BERT-base `BertForSequenceClassification`: 12 layers, hidden
size 768, 12 heads, intermediate size 3072, 512 positions, a vocabulary of 30,873 tokens and
three labels (0 Neutral, 1 Positive, 2 Negative). This script builds the same network with
random weights (seeded, so two runs give the same files) and saves it with `save_pretrained`,
with a `BertTokenizerFast` whose vocabulary also has 30,873 entries: the special tokens, then
real words (every word of data/sample_posts.jsonl split the way BERT's basic tokenizer splits,
a list of common English and market words, numbers), single characters, `##` characters and
common suffixes, padded with `[unusedN]` tokens that no text can produce. Realistic posts
therefore tokenise to about as many tokens as with a real BERT vocabulary.

The compute per token is the real model's, so timings measured with it hold for FinBERT; the
predictions are meaningless (random weights). Use it where the hub is out of reach, as
the benches do (`benches/harness/model.py`); never to judge accuracy.

>>> vocab = vocabulary(["Stocks rally!"])                                 # doctest: +SKIP
>>> len(vocab), vocab[:5]                                                 # doctest: +SKIP
(30873, ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'])
"""

from __future__ import annotations

import argparse
import json
import string
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_POSTS = REPO_ROOT / "data" / "sample_posts.jsonl"

VOCAB_SIZE = 30873
HIDDEN_SIZE = 768
LAYERS = 12
HEADS = 12
INTERMEDIATE_SIZE = 3072
MAX_POSITIONS = 512
ID2LABEL = {0: "Neutral", 1: "Positive", 2: "Negative"}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

COMMON_WORDS = """
the of and to a in is it you that he was for on are with as i his they be at one have this
from or had by not word but what some we can out other were all there when up use your how
said an each she which do their time if will way about many then them write would like so
these her long make thing see him two has look more day could go come did number sound no
most people my over know water than call first who may down side been now find any new work
part take get place made live where after back little only round man year came show every
good me give our under name very through just form sentence great think say help low line
differ turn cause much mean before move right boy old too same tell does set three want air
well also play small end put home read hand port large spell add even land here must big high
such follow act why ask men change went light kind off need house picture try us again animal
point mother world near build self earth father head stand own page should country found answer
school grow study still learn plant cover food sun four between state keep eye never last let
thought city tree cross farm hard start might story saw far sea draw left late run don't while
press close night real life few north open seem together next white children begin got walk
example ease paper group always music those both mark often letter until mile river car feet
care second book carry took science eat room friend began idea fish mountain stop once base
hear horse cut sure watch color face wood main enough plain girl usual young ready above ever
red list though feel talk bird soon body dog family direct pose leave song measure door
product black short numeral class wind question happen complete ship area half rock order fire
south problem piece told knew pass since top whole king space heard best hour better true
during hundred five remember step early hold west ground interest reach fast verb sing listen
six table travel less morning ten simple several vowel toward war lay against pattern slow
center love person money serve appear road map rain rule govern pull cold notice voice unit
power town fine certain fly fall lead cry dark machine note wait plan figure star box noun
field rest correct able pound done beauty drive stood contain front teach week final gave
green oh quick develop ocean warm free minute strong special mind behind clear tail produce
fact street inch multiply nothing course stay wheel full force blue object decide surface deep
moon island foot system busy test record boat common gold possible plane stead dry wonder
laugh thousand ago ran check game shape equate hot miss brought heat snow tire bring yes
distant fill east paint language among grand ball yet wave drop heart am present heavy dance
engine position arm wide sail material size vary settle speak weight general ice matter circle
pair include divide syllable felt perhaps pick sudden count square reason length represent art
subject region energy hunt probable bed brother egg ride cell believe fraction forest sit race
window store summer train sleep prove lone leg exercise wall catch mount wish sky board joy
winter sat written wild instrument kept glass grass cow job edge sign visit past soft fun
bright weather month million bear finish happy hope flower clothe strange gone jump baby eight
village meet root buy raise solve metal whether push seven paragraph third shall held hair
describe cook floor either result burn hill safe cat century consider type law bit coast copy
phrase silent tall sand soil roll temperature finger industry value fight lie beat excite
natural view sense ear else quite broke case middle kill son lake moment scale loud spring
observe child straight consonant nation dictionary milk speed method organ pay age section
dress cloud surprise quiet stone tiny climb cool design poor lot experiment bottom key iron
single stick flat twenty skin smile crease hole trade melody trip office receive row mouth
exact symbol die least trouble shout except wrote seed tone join suggest clean break lady yard
rise bad blow oil blood touch grew cent mix team wire cost lost brown wear garden equal sent
choose fell fit flow fair bank collect save control decimal gentle woman captain practice
separate difficult doctor please protect noon whose locate ring character insect caught period
indicate radio spoke atom human history effect electric expect crop modern element hit student
corner party supply bone rail imagine provide agree thus capital won't chair danger fruit rich
thick soldier process operate guess necessary sharp wing create neighbor wash bat rather crowd
corn compare poem string bell depend meat rub tube famous dollar stream fear sight thin
triangle planet hurry chief colony clock mine tie enter major fresh search send yellow gun
allow print dead spot desert suit current lift rose continue block chart hat sell success
company subtract event particular deal swim term opposite wife shoe shoulder spread arrange
camp invent cotton born determine quart nine truck noise level chance gather shop stretch
throw shine property column molecule select wrong gray repeat require broad prepare salt nose
plural anger claim continent oxygen sugar death pretty skill women season solution magnet
silver thank branch match suffix especially fig afraid huge sister steel discuss forward
similar guide experience score apple bought led pitch coat mass card band rope slip win dream
evening condition feed tool total basic smell valley nor double seat arrive master track parent
shore division sheet substance favor connect post spend chord fat glad original share station
dad bread charge proper bar offer segment slave duck instant market degree populate chick dear
enemy reply drink occur support speech nature range steam motion path liquid log meant
quotient teeth shell neck
stock stocks shares share equity equities bond bonds treasury treasuries yield yields rate
rates interest inflation deflation recession depression growth gdp economy economic economics
earnings revenue revenues profit profits loss losses margin margins guidance forecast outlook
quarter quarterly annual fiscal dividend dividends buyback buybacks valuation investors
investor investment investments invest fund funds hedge portfolio asset assets liability
liabilities debt deficit surplus budget spending tax taxes tariff tariffs trade trading trader
traders exports imports export import manufacturing jobs unemployment payrolls wages wage
labor consumer consumers demand supply prices price pricing cost costs fed federal reserve
central banks banking banker bankers lending loans loan credit mortgage mortgages housing
oil crude gas energy gold silver copper commodities commodity currency currencies dollar euro
yen yuan bitcoin crypto cryptocurrency rally rallies rallied surge surged surges soar soared
soaring plunge plunged plunges crash crashed crashes tumble tumbled slump slumped drop dropped
drops decline declined declines gain gained gains jump jumped climb climbed slide slid fall
fell falls rise rose rises record high highs low lows volatile volatility risk risks
uncertainty optimism pessimism confidence sentiment bullish bearish bull bear boom bust bubble
selloff rebound recovery recover recovered stimulus bailout sanctions deal deals agreement
negotiations talks merger mergers acquisition acquisitions ipo shareholders shareholder ceo
cfo board executive executives company companies corporate corporation firm firms business
businesses industry industries sector sectors tech technology bank nasdaq dow index indices
futures options billion billions million millions trillion trillions percent percentage basis
points point strong stronger strongest weak weaker weakest positive negative neutral beat beats
missed miss expectations estimate estimates analyst analysts upgrade downgrade outperform
underperform buy sell hold target tremendous beautiful disaster terrible incredible massive
historic unprecedented fantastic horrible worst greatest biggest winning losing win lose
america american americans china chinese europe european mexico canada japan germany russia
india president administration congress senate house white government policy policies
election vote voters regulation regulations regulators sec treasury secretary minister
""".split()  # noqa: SIM905 - a word list reads better as text

SUFFIXES = """
s es ed d ing ly er ers est ion ions tion tions sion ment ments ness able ible al ial ity ive
ize ized izes izing ise ful less ous ious ic ical ist ists ism y ies ied ier iest en ened ening
ance ence ant ent ary ory age ages ate ated ates ating ship hood ward wards like ish 's n't
""".split()  # noqa: SIM905 - a word list reads better as text


def basic_tokens(text: str) -> list[str]:
    """Split `text` as BERT's basic tokenizer does: lower-case, strip accents, split
    punctuation off (the same normaliser and pre-tokeniser the fast tokenizer runs).

    >>> basic_tokens("Stocks RALLY, 25%!")
    ['stocks', 'rally', ',', '25', '%', '!']
    """
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    pre = pre_tokenizers.BertPreTokenizer()
    return [piece for piece, _ in pre.pre_tokenize_str(normalizer.normalize_str(text))]


def sample_texts(path: Path = SAMPLE_POSTS) -> list[str]:
    """The non-empty texts of a JSON Lines file of posts."""
    texts: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                text = json.loads(line).get("text") or ""
                if text.strip():
                    texts.append(text)
    return texts


def vocabulary(texts: Iterable[str], size: int = VOCAB_SIZE) -> list[str]:
    """Special tokens, real words and pieces, padded with `[unusedN]` to exactly `size` tokens.

    Corpus words come first (most frequent first, ties alphabetical), so the order, and thus
    the token ids, are the same on every run.
    """
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(basic_tokens(text))
    corpus_words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    ascii_chars = [c for c in string.printable if not c.isspace() and not c.isupper()]
    corpus_chars = sorted({c for w in corpus_words for c in w})
    pieces = ["##" + c for c in string.ascii_lowercase + string.digits]
    pieces += ["##" + s for s in SUFFIXES]
    numbers = [str(n) for n in range(1001)] + [str(y) for y in range(1900, 2051)]
    english = [w.lower() for w in COMMON_WORDS]
    real = SPECIALS + ascii_chars + corpus_chars + pieces + corpus_words + english
    real = list(dict.fromkeys(real + numbers))
    if len(real) > size:
        raise ValueError(f"{len(real)} real tokens do not fit a vocabulary of {size}")
    # "[" is punctuation to the basic tokenizer, so no input text can ever produce these.
    return real + [f"[unused{i}]" for i in range(size - len(real))]


def make_finbert_like_model(out_dir: Path, seed: int = 1234) -> Path:
    """Build the model and tokenizer and save both into `out_dir` (created if missing)."""
    import torch
    import transformers
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    transformers.utils.logging.disable_progress_bar()
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary(sample_texts())
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp) / "vocab.txt"
        vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        tokenizer = BertTokenizerFast(
            str(vocab_file), do_lower_case=True, model_max_length=MAX_POSITIONS
        )
        if len(tokenizer) != VOCAB_SIZE:
            raise RuntimeError(f"the tokenizer has {len(tokenizer)} tokens, not {VOCAB_SIZE}")
        tokenizer.save_pretrained(out_dir)
    config = BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=HIDDEN_SIZE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE_SIZE,
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        pad_token_id=0,
        num_labels=3,
        id2label=ID2LABEL,
        label2id={v: k for k, v in ID2LABEL.items()},
        architectures=["BertForSequenceClassification"],
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    model.eval()
    model.save_pretrained(out_dir)
    return out_dir


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    print(make_finbert_like_model(args.out_dir, args.seed))


if __name__ == "__main__":
    main()
