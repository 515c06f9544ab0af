"""Does the decontamination guard remove copies of test items, and only them? Measured on three kinds of data.

For each target, half of its items are the test set and the other half are *in-domain candidates*: distinct
items of the same task and template, which a guard must never flag (the old whole-example cosine rule removed
59-60 of 60 on templated third-party tasks). Every test item is also copied into a candidate five ways
(``winnow.data.templated.copies``): verbatim under another instruction, re-cased with its punctuation and
spacing changed, the instruction reworded around the same content (all three must be caught), one word
replaced and two words dropped (reported: of a short templated item, such an edit is another item). Pool
candidates of other tasks are the third group.

Targets: the demo target (ToMi) against the demo pool, evals of the OpenAI Evals registry (from the evals
wheel), and generated templated tasks (True/False expressions, arithmetic, counting lists, fill-in-the-blank).
For each: recall per copy kind, the false-positive rate on in-domain and pool candidates, with and without the
paraphrase signal, and the old rule's in-domain false-positive rate (whole-example cosine >= 0.8) beside it.

    python bench/decontamination.py --wheel .cache/wheels/evals-3.0.1.post1-py3-none-any.whl \
        --pool data/demo/pool.jsonl [--out runs/bench/decontamination.json]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from winnow.data.evals_registry import eval_name, read_eval  # noqa: E402
from winnow.data.loaders import load_records  # noqa: E402
from winnow.data.records import Record, parse_record  # noqa: E402
from winnow.data.templated import TASKS, copies, templated_task  # noqa: E402
from winnow.selection.decontaminate import Guard, find_contaminated, item_text, prepare  # noqa: E402

# Registry evals with many items of one template: True/False, counting, arithmetic, multiple choice, and the
# demo's own target.
REGISTRY_EVALS = ("aba_mrpc_true_false/samples.jsonl", "logical_counting/samples.jsonl",
                  "arithmetic-expression/samples.jsonl", "sort_numeric/samples.jsonl",
                  "which_is_heavier/which_is_heavier.jsonl", "theory_of_mind/tomi/test.jsonl")
REQUIRED = ("verbatim", "recased", "reworded")


def registry_task(wheel: str, member: str, n: int) -> list[Record]:
    with zipfile.ZipFile(wheel) as zf:
        rows, _ = read_eval(zf, member)
    name = eval_name(member)
    recs = [parse_record({**r, "id": f"{name}-{i}"}) for i, r in enumerate(rows)]
    random.Random(0).shuffle(recs)
    return recs[:n]


def measure(target: list[Record], pool: list[Record], embed, old_embed) -> dict:
    """Recall per copy kind and false-positive rates for one target, with and without the paraphrase signal."""
    half = len(target) // 2
    test, in_domain = target[:half], target[half:]
    rng = random.Random(0)
    planted: dict[str, list[Record]] = {}
    for r in test:
        for kind, rec in copies(r, rng).items():
            planted.setdefault(kind, []).append(rec)
    out: dict = {"test": len(test), "in_domain": len(in_domain), "pool": len(pool)}
    for label, fn in (("lexical", None), ("with_paraphrase", embed)):
        guard = Guard(test, embed=fn)
        prep = prepare(guard)
        t0 = time.time()
        flagged = lambda recs: [c["contaminated"] for c in find_contaminated(recs, guard, prep)]  # noqa: E731
        row = {f"recall_{k}": float(np.mean(flagged(v))) for k, v in planted.items()}
        row["fpr_in_domain"] = float(np.mean(flagged(in_domain))) if in_domain else None
        row["fpr_pool"] = float(np.mean(flagged(pool))) if pool else None
        row["seconds"] = round(time.time() - t0, 2)
        out[label] = row
    tv, iv = old_embed(test), old_embed(in_domain)
    out["old_rule_fpr_in_domain"] = float(((iv @ tv.T).max(1) >= 0.8).mean())  # whole-example cosine >= 0.8
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel", required=True, help="the evals wheel (make's .cache/wheels/evals-*.whl)")
    ap.add_argument("--pool", required=True, help="the demo pool: the other-task candidates")
    ap.add_argument("--per-target", type=int, default=120, help="items per target (half test, half in-domain)")
    ap.add_argument("--pool-sample", type=int, default=400)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "decontamination.json"))
    args = ap.parse_args()
    from winnow.features.embeddings import embed_texts

    def unit(texts: list[str]) -> np.ndarray:
        raw = embed_texts("default", texts, device="cpu")
        return raw / np.linalg.norm(raw, axis=1, keepdims=True).clip(min=1e-30)

    def old_embed(recs: list[Record]) -> np.ndarray:  # what the old guard embedded: the whole item
        return unit([item_text(r) for r in recs])

    pool = load_records(args.pool).records
    random.Random(1).shuffle(pool)
    t0 = time.time()
    res: dict = {"targets": {}}
    for member in REGISTRY_EVALS:
        target = registry_task(args.wheel, member, args.per_target)
        others = [r for r in pool if r.task != target[0].task][:args.pool_sample]
        res["targets"][f"registry:{eval_name(member)}"] = measure(target, others, unit, old_embed)
        print(eval_name(member), json.dumps(res["targets"][f"registry:{eval_name(member)}"]), flush=True)
    for kind in TASKS:
        res["targets"][f"templated:{kind}"] = measure(templated_task(kind, args.per_target), pool[:args.pool_sample],
                                                      unit, old_embed)
        print(kind, json.dumps(res["targets"][f"templated:{kind}"]), flush=True)
    rows = [t["with_paraphrase"] for t in res["targets"].values()]
    res["summary"] = {
        "min_recall_required": min(r[f"recall_{k}"] for r in rows for k in REQUIRED),
        "max_fpr_in_domain": max(r["fpr_in_domain"] for r in rows),
        "max_fpr_pool": max(r["fpr_pool"] for r in rows),
        "max_old_rule_fpr_in_domain": max(t["old_rule_fpr_in_domain"] for t in res["targets"].values()),
        "required_kinds": list(REQUIRED)}
    res["seconds"] = round(time.time() - t0, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res["summary"], indent=1))


if __name__ == "__main__":
    main()
