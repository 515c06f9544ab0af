"""Top-k recall of int8 and 1-bit feature codes against fp16, on real stored gradient features.

Reads a pool and a query feature table (by default the newest pair in the store that `make demo` fills),
re-codes the fp16 vectors in memory with the store's own encode/decode, and compares the top-k by LESS's
score (max over queries, checkpoint-weighted) and the round-robin selection with those of fp16.

    python bench/codes.py [--store .winnow/lancedb] [--pool grads_adam__...] [--query grads_sgd__...]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from winnow.selection.round_robin import select_round_robin  # noqa: E402
from winnow.selection.similarity import weighted_similarity  # noqa: E402
from winnow.store import feature_tables, lance  # noqa: E402
from winnow.store.codes import decode, encode  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def recode(vectors: np.ndarray, codes: str) -> np.ndarray:
    C, N, d = vectors.shape
    coded, _ = encode(vectors.reshape(C * N, d), codes)  # type: ignore[arg-type]
    return decode(coded, codes, d).reshape(C, N, d)  # type: ignore[arg-type]


def newest(db, prefix: str) -> str:
    names = [t for t in db.list_tables().tables if t.startswith(prefix)]
    if not names:
        sys.exit(f"no table {prefix}* in the store: run `make demo` first or pass --store/--pool/--query")
    return max(names, key=lambda t: db.open_table(t).version)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default=str(ROOT / ".winnow" / "lancedb"))
    ap.add_argument("--pool")
    ap.add_argument("--query")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "codes.json"))
    args = ap.parse_args()
    db = lance.connect(args.store)
    pool_t, query_t = args.pool or newest(db, "grads_adam__"), args.query or newest(db, "grads_sgd__")
    pool, query = feature_tables.read_features(db, pool_t), feature_tables.read_features(db, query_t)
    weights = lance.provenance_of(db, pool_t).get("checkpoint_weights") or [1.0 / pool.vectors.shape[0]] * pool.vectors.shape[0]
    N = pool.vectors.shape[1]
    S_ref = weighted_similarity(query.vectors, pool.vectors, np.asarray(weights))  # (M, N)
    ref_scores, ref_rr = S_ref.max(axis=0), select_round_robin(S_ref).indices  # max score = doubly greedy's
    result = {"pool_table": pool_t, "query_table": query_t, "n_pool": N, "n_query": query.vectors.shape[1],
              "dim": pool.vectors.shape[2], "checkpoints": pool.vectors.shape[0], "codes": {}}
    ks = sorted({max(1, round(f * N)) for f in (0.05, 0.10, 0.25)})
    for codes in ("int8", "bit"):
        P, Q = recode(pool.vectors, codes), recode(query.vectors, codes)
        S = weighted_similarity(Q, P, np.asarray(weights))
        scores, rr = S.max(axis=0), select_round_robin(S).indices
        row = {"bytes_per_vector": {"int8": 1, "bit": 1 / 8}[codes] * pool.vectors.shape[2],
               "score_corr": float(np.corrcoef(ref_scores, scores)[0, 1])}
        for k in ks:
            top_ref, top = set(np.argsort(-ref_scores)[:k]), set(np.argsort(-scores)[:k])
            row[f"recall_top{k}_max_score"] = len(top_ref & top) / k
            row[f"overlap_top{k}_round_robin"] = len(set(ref_rr[:k]) & set(rr[:k])) / k
        result["codes"][codes] = row
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"{pool_t} ({N} rows x {result['checkpoints']} checkpoints x {result['dim']} dims) vs {query_t}")
    for codes, row in result["codes"].items():
        cells = ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "bytes_per_vector")
        print(f"  {codes:5s} ({row['bytes_per_vector']:.0f} B/vector vs {2 * result['dim']} fp16): {cells}")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
