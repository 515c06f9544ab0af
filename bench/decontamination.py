"""How well decontamination separates copies of test items from everything else, on real data.

Positives are planted: each test item copied into a training example (a) verbatim under another instruction,
(b) with one word replaced and the case and punctuation changed, (c) with two words dropped. Negatives are
(d) every pool example and (e) every *other* item of the test set — same task, same template, different item:
the hardest negatives there are. For n-gram sizes n and thresholds, and for embedding cosine thresholds, this
writes the recall on (a)-(c) and the false-positive rate on (d) and (e), so the defaults are chosen by
measurement (``selection.decontaminate``).

    python bench/decontamination.py --pool data/demo/pool.jsonl --test data/demo/test.jsonl [--out runs/bench/decontamination.json]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from winnow.data.loaders import load_records  # noqa: E402
from winnow.data.records import Record  # noqa: E402
from winnow.selection.decontaminate import containment, item_ngrams, item_text, record_ngrams  # noqa: E402


def plant(test: list[Record], seed: int = 0) -> dict[str, list[Record]]:
    rng = random.Random(seed)
    out: dict[str, list[Record]] = {"verbatim": [], "one_word": [], "two_dropped": []}
    for r in test:
        user = [c for role, c in r.messages if role == "user"][-1]
        words = user.split()
        out["verbatim"].append(Record(f"v-{r.id}", (("system", "Classify the text."), ("user", user),
                                                    ("assistant", r.response)), "planted", "planted"))
        w = list(words)
        w[rng.randrange(len(w))] = "banana"
        out["one_word"].append(Record(f"o-{r.id}", (("user", " ".join(w).upper() + "!"), ("assistant", r.response)),
                                      "planted", "planted"))
        w = list(words)
        for _ in range(min(2, len(w) - 1)):
            w.pop(rng.randrange(len(w)))
        out["two_dropped"].append(Record(f"t-{r.id}", (("user", " ".join(w)), ("assistant", r.response)),
                                         "planted", "planted"))
    return out


def ngram_scores(cands: list[Record], test: list[Record], n: int, exclude_self: bool = False) -> np.ndarray:
    """Each candidate's best containment over the test items (its own index excluded when asked)."""
    items = item_ngrams(test, n, 0.1)
    best = []
    for i, c in enumerate(cands):
        g = record_ngrams(c, n)
        best.append(max(containment(g, it) for j, it in enumerate(items) if not (exclude_self and j == i)))
    return np.array(best)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "decontamination.json"))
    args = ap.parse_args()
    pool, test = load_records(args.pool).records, load_records(args.test).records
    planted = plant(test)
    t0 = time.time()
    res: dict = {"pool": len(pool), "test": len(test), "ngram": {}, "cosine": {}}
    for n in (3, 5, 8, 13):
        pos = {k: ngram_scores(v, test, n) for k, v in planted.items()}
        neg_pool, neg_same = ngram_scores(pool, test, n), ngram_scores(test, test, n, exclude_self=True)
        res["ngram"][n] = {str(t): {**{f"recall_{k}": float((s >= t).mean()) for k, s in pos.items()},
                                    "fpr_pool": float((neg_pool >= t).mean()), "fpr_same_task": float((neg_same >= t).mean())}
                           for t in (0.3, 0.5, 0.7)}
    from winnow.features.embeddings import embedding_features

    def embed(recs: list[Record]) -> np.ndarray:  # what decontamination embeds: the item, not its instruction
        content = [Record(r.id, (("user", item_text(r)), ("assistant", "")), r.source, r.task) for r in recs]
        return embedding_features("default", content, batch_size=32, device="cpu", progress=False)[0]

    tv = embed(test)
    pos = {k: (embed(v) @ tv.T)[np.arange(len(test)), np.arange(len(test))] for k, v in planted.items()}
    same = tv @ tv.T
    np.fill_diagonal(same, -1)
    neg_pool, neg_same = (embed(pool) @ tv.T).max(1), same.max(1)
    res["cosine"] = {str(t): {**{f"recall_{k}": float((s >= t).mean()) for k, s in pos.items()},
                              "fpr_pool": float((neg_pool >= t).mean()), "fpr_same_task": float((neg_same >= t).mean())}
                     for t in (0.8, 0.85, 0.9, 0.95)}
    res["cosine_quantiles"] = {"pool_max_p99": float(np.quantile(neg_pool, 0.99)),
                               "same_task_max_p99": float(np.quantile(neg_same, 0.99)),
                               **{f"planted_{k}_min": float(s.min()) for k, s in pos.items()}}
    res["seconds"] = round(time.time() - t0, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
