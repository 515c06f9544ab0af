"""Decontamination by outcome: planted copies of test items are caught, other items of the same task are not,
and a guarded subset refills from the ranking."""
from __future__ import annotations

import numpy as np

from winnow.data.records import Record
from winnow.selection.decontaminate import Guard, find_contaminated, guarded_prefix

SYSTEM = "Respond with only a 1 or 0 to signify if the user's message includes sarcasm, or not"
HEADLINES = ["protesters stage third day of demonstrations over the verdict", "landmarks turn blue for awareness day",
             "area man wins lifetime supply of regret after contest", "city council approves new budget for parks",
             "local dog elected mayor in landslide victory again", "scientists discover water on a distant moon"]


def _item(i: int, text: str, answer: str = "0", system: str = SYSTEM) -> Record:
    msgs = ((("system", system),) if system else ()) + (("user", text), ("assistant", answer))
    return Record(f"r{i}", msgs, "s", "t")


TEST = [_item(i, h) for i, h in enumerate(HEADLINES)]


def test_copies_are_caught_and_same_task_items_are_not() -> None:
    cands = [_item(10, HEADLINES[0], system="Classify the text."),          # verbatim under another instruction
             _item(11, HEADLINES[2].upper() + "!!!", system=""),            # re-cased, punctuation changed
             _item(12, "a completely different headline about the weather today"),  # same template, other item
             _item(13, "unrelated", system=SYSTEM)]                       # only the template in common
    checks = find_contaminated(cands, TEST, n=5)
    assert [c["contaminated"] for c in checks] == [True, True, False, False], checks
    assert checks[0]["ngram_test_id"] == "r0" and checks[1]["ngram_test_id"] == "r2"
    assert checks[3]["ngram"] == 0.0  # the system prompt is every test item's: template, not content


def test_guarded_prefix_refills_from_the_ranking_and_can_keep_on_request() -> None:
    pool = [_item(100 + i, f"pool example number {i} talks about something else entirely", system="")
            for i in range(10)]
    pool[2] = _item(102, HEADLINES[1], system="")
    pool[5] = _item(105, HEADLINES[4], system="")
    order = np.arange(10)
    read = lambda idx: [pool[i] for i in idx]  # noqa: E731
    kept, recs, summary = guarded_prefix(order, 4, read, Guard(TEST, n=5))
    assert kept.tolist() == [0, 1, 3, 4] and [r.id for r in recs] == ["r100", "r101", "r103", "r104"]
    assert (summary["checked"], summary["contaminated"], summary["excluded"]) == (5, 1, 1)
    kept, _, summary = guarded_prefix(order, 10, read, Guard(TEST, n=5))
    assert 2 not in kept and 5 not in kept and len(kept) == 8 and summary["excluded"] == 2
    kept, _, summary = guarded_prefix(order, 4, read, Guard(TEST, n=5, exclude=False))
    assert kept.tolist() == [0, 1, 2, 3] and (summary["contaminated"], summary["excluded"]) == (1, 0)


def test_embedding_view_catches_what_ngrams_miss() -> None:
    """A paraphrase shares no 5-gram; a (deterministic, bag-of-words) embedding still sees it."""
    vocab = sorted({w for h in HEADLINES + ["rally", "protest"] for w in h.split()})

    def embed(records: list[Record]) -> np.ndarray:
        v = np.array([[float(w in r.messages[-2][1].split()) for w in vocab] for r in records])
        return v / np.linalg.norm(v, axis=1, keepdims=True).clip(min=1e-9)

    para = _item(20, "third day of demonstrations: protesters stage over the verdict", system="")
    plain = find_contaminated([para], TEST, n=5)
    seen = find_contaminated([para], TEST, n=5, embed=embed, cosine_threshold=0.8)
    assert not plain[0]["contaminated"] and seen[0]["contaminated"] and seen[0]["cosine_test_id"] == "r0"
