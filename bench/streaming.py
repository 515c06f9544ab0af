"""Peak memory of selection and DUET's influence at a million pool rows: streamed vs reading every feature.

Builds a synthetic feature store (``--rows`` pool rows, 2 checkpoints, ``--dim`` dims, fp16 codes, 32 queries,
64 held-out rows over 16 domains), then measures each operation in its own fresh process (peak RSS, so Arrow's
and numpy's allocations count) against the same process reading the whole pool feature matrix:

- ``select``: ``order_pool`` with round-robin (the similarity is streamed; it holds queries × rows floats);
- ``influence``: ``winnow.mixture.influence.influence_by_id`` (one batch, the scores and the domain targets);
- ``read_all``: ``feature_tables.read_features`` of the pool, what both did before they streamed.

Writes JSON with each peak in MB and the named ratios ``select_vs_read_all`` and ``influence_vs_read_all``.

    python bench/streaming.py [--rows 1000000] [--dim 256] [--out runs/bench/streaming.json]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from winnow.store import feature_tables, lance  # noqa: E402
from winnow.store.codes import encode  # noqa: E402

CHECKPOINTS = 2
DOMAINS = 16


def _table(n: int, dim: int, start: int, checkpoint: int, rng: np.random.Generator, prefix: str) -> pa.Table:
    vec = rng.standard_normal((n, dim), dtype=np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    coded, scale = encode(vec, "fp16")
    rows = np.arange(start, start + n)
    dom = [f"d{r % DOMAINS}" for r in rows]
    return pa.table({"key": [f"{prefix}{r}@{checkpoint}" for r in rows], "id": [f"{prefix}{r}" for r in rows],
                     "row_idx": rows, "checkpoint": np.full(n, checkpoint, np.int32), "source": dom, "task": dom,
                     "vector": pa.FixedSizeListArray.from_arrays(pa.array(coded.reshape(-1)), dim), "scale": scale,
                     "norm": np.ones(n, np.float32), "n_tokens": np.ones(n, np.int32)},
                    schema=feature_tables.feature_schema(dim, "fp16"))


def build(store: str, rows: int, dim: int, block: int = 100_000) -> None:
    """Appends straight through Lance (``add``), block by block: the bench measures reading, not writing."""
    db = lance.connect(store)
    rng = np.random.default_rng(0)
    for name, n, prefix in (("pool", rows, "p"), ("query", 32, "q"), ("held", 64, "h")):
        feature_tables.create_feature_table(db, name, dim, {"bench": name})
        tbl = db.open_table(name)
        for c in range(CHECKPOINTS):
            for start in range(0, n, block):
                tbl.add(_table(min(block, n - start), dim, start, c, rng, prefix))
        lance.compact(db, name)


def measure(store: str, what: str) -> dict[str, float]:
    """Run in a fresh process: one operation, then its peak resident memory."""
    t0 = time.time()
    if what == "select":
        from winnow.selection.targeted import order_pool

        order_pool(store, "query", "pool", selector="round_robin", seed=0, weights=[0.5, 0.5])
    elif what == "influence":
        from winnow.mixture.influence import influence_by_id

        influence_by_id(lance.connect(store), "pool", "held", [0.5, 0.5])
    else:
        feature_tables.read_features(lance.connect(store), "pool")
    return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": time.time() - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "streaming.json"))
    ap.add_argument("--measure", nargs=2, metavar=("STORE", "WHAT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        build(tmp, args.rows, args.dim)
        built = time.time() - t0
        runs = {}
        for what in ("read_all", "select", "influence"):
            out = subprocess.run([sys.executable, __file__, "--measure", tmp, what], capture_output=True, text=True,
                                 check=True)
            runs[what] = json.loads(out.stdout.strip().splitlines()[-1])
            print(what, runs[what], flush=True)
    matrix_mb = CHECKPOINTS * args.rows * args.dim * 4 / 2**20
    result = {"rows": args.rows, "dim": args.dim, "checkpoints": CHECKPOINTS, "queries": 32, "build_seconds": built,
              "float32_matrix_mb": matrix_mb, **{f"{k}_{m}": v[m] for k, v in runs.items() for m in v},
              "select_vs_read_all": runs["select"]["peak_mb"] / runs["read_all"]["peak_mb"],
              "influence_vs_read_all": runs["influence"]["peak_mb"] / runs["read_all"]["peak_mb"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
