"""Decontamination: no example a subset trains on may be a copy or a near copy of a test item.

Selecting what is most similar to a target's queries is exactly how near-duplicates of the target's *test*
items get into training, and the test score then measures memory. So every candidate is compared with every
test item on two views before any fine-tune:

- **n-gram containment**: the share of a test item's word n-grams (lower-cased, punctuation dropped) that
  occur in the candidate. n-grams that many test items share are the task's template ("Answer with 0 or
  1"), not an item's content, and are left out (document frequency above ``template_df`` of the test set);
  an item shorter than n words is one n-gram, so a verbatim short item still matches.
- **embedding cosine** between whole examples (sentence embeddings), for paraphrases with few shared n-grams.

A candidate at or above either threshold is contaminated. The thresholds' defaults come from a measurement
(bench/decontamination.py): they separate planted copies and paraphrases of test items from the rest.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from winnow.data.records import Record

_WORD = re.compile(r"\w+")


def item_text(record: Record) -> str:
    """What an item *is*: its user turns and response. The system turn is the task's instruction, shared by
    every item of a task, and would make all of them look alike to an embedding."""
    return "\n".join(content for role, content in record.messages if role != "system")


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def record_ngrams(record: Record, n: int) -> set[tuple[str, ...]]:
    """n-grams of each turn (none spans two turns, so a copy under another instruction loses nothing)."""
    return set().union(*(word_ngrams(content, n) for _, content in record.messages))


def item_ngrams(test: list[Record], n: int, template_df: float) -> list[set[tuple[str, ...]]]:
    """Each test item's n-grams less the template's: those in more than ``template_df`` of the items (and in at
    least two). An item made only of template n-grams keeps them all, so it can still be matched verbatim."""
    grams = [record_ngrams(r, n) for r in test]
    df = Counter(g for gs in grams for g in gs)
    cut = max(2, template_df * len(test))
    out = []
    for gs in grams:
        own = {g for g in gs if df[g] < cut}
        out.append(own or gs)
    return out


def containment(candidate: set[tuple[str, ...]], item: set[tuple[str, ...]]) -> float:
    return len(candidate & item) / len(item) if item else 0.0


def find_contaminated(candidates: list[Record], test: list[Record], *, n: int = 8, ngram_threshold: float = 0.5,
                      cosine_threshold: float = 0.95, template_df: float = 0.1,
                      embed: Callable[[list[Record]], np.ndarray] | None = None,
                      test_vectors: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One entry per candidate: its nearest test item by n-gram containment and by cosine, both scores, and
    whether it is contaminated (and why). ``embed`` maps records to unit vectors (None: n-grams only);
    ``test_vectors`` are the test items' (computed once by the caller when it checks many chunks)."""
    items = item_ngrams(test, n, template_df)
    cos = np.zeros((len(candidates), max(len(test), 1)), dtype=np.float32)
    if embed is not None and test and candidates:
        tv = test_vectors if test_vectors is not None else embed(test)
        cos = embed(candidates) @ tv.T
    out = []
    for i, rec in enumerate(candidates):
        grams = record_ngrams(rec, n)
        overlap = np.array([containment(grams, it) for it in items]) if items else np.zeros(1)
        j_ng, j_cos = int(overlap.argmax()), int(cos[i].argmax())
        reasons = ([f"n-gram containment {overlap[j_ng]:.2f} >= {ngram_threshold}"] if overlap[j_ng] >= ngram_threshold
                   else []) + ([f"cosine {cos[i, j_cos]:.3f} >= {cosine_threshold}"]
                               if embed is not None and cos[i, j_cos] >= cosine_threshold else [])
        out.append({"id": rec.id, "ngram": round(float(overlap[j_ng]), 4),
                    "ngram_test_id": test[j_ng].id if test else None,
                    "cosine": round(float(cos[i, j_cos]), 4) if embed is not None else None,
                    "cosine_test_id": test[j_cos].id if test and embed is not None else None,
                    "contaminated": bool(reasons), "reason": "; ".join(reasons)})
    return out


@dataclass(frozen=True)
class Guard:
    """What a subset is checked against and how. ``embed`` maps records to unit vectors of their
    ``item_text`` (None: n-grams only); ``exclude`` False keeps contaminated examples but still lists them."""

    test: list[Record]
    n: int = 5
    ngram_threshold: float = 0.5
    cosine_threshold: float = 0.8
    template_df: float = 0.1
    embed: Callable[[list[Record]], np.ndarray] | None = None
    exclude: bool = True


def guarded_prefix(order: np.ndarray, k: int, read: Callable[[np.ndarray], list[Record]],
                   guard: Guard) -> tuple[np.ndarray, list[Record], dict[str, Any]]:
    """The first ``k`` entries of ``order`` that are clean, reading candidates chunk by chunk (a ranking is
    walked only as far as it must be), with a summary: how many were checked, and each contaminated one."""
    test_vectors = guard.embed(guard.test) if guard.embed is not None and guard.test else None
    kept: list[int] = []
    recs: list[Record] = []
    found: list[dict[str, Any]] = []
    checked, pos = 0, 0
    while len(kept) < k and pos < len(order):
        chunk = order[pos:pos + max(2 * (k - len(kept)), 16)]
        pos += len(chunk)
        batch = read(chunk)
        checks = find_contaminated(batch, guard.test, n=guard.n, ngram_threshold=guard.ngram_threshold,
                                   cosine_threshold=guard.cosine_threshold, template_df=guard.template_df,
                                   embed=guard.embed, test_vectors=test_vectors)
        for idx, rec, check in zip(chunk, batch, checks):
            if len(kept) == k:
                break
            checked += 1
            if check["contaminated"]:
                found.append(check)
                if guard.exclude:
                    continue
            kept.append(int(idx))
            recs.append(rec)
    summary = {"checked": checked, "test_items": len(guard.test), "contaminated": len(found),
               "excluded": len(found) if guard.exclude else 0, "found": found,
               "rule": f"{guard.n}-gram containment >= {guard.ngram_threshold}" +
                       (f" or cosine >= {guard.cosine_threshold}" if guard.embed is not None else "")}
    return np.asarray(kept, dtype=np.int64), recs, summary
