"""Selection at scale: round-robin against the naive O(k·N) loop, and UOT / KNN timings.

The naive loop is run at sizes that finish in a minute or two, checked to give the same ordering as the
fast one there, and its cost is extrapolated linearly in k·N (each pick is an argmax over N) to the full
size, which is said in the output. All in one run, so the ratio is measured under the same machine load.

    python bench/selection.py                       # N = 1M, M = 1k, k = 100k; UOT/KNN at N = 100k
    python bench/selection.py --n 100000 --k 10000  # smaller
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from winnow.selection.knn import select_knn_kde, select_knn_uniform  # noqa: E402
from winnow.selection.transport import select_uot  # noqa: E402
from winnow.selection.round_robin import select_round_robin, select_round_robin_naive  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def similarity(rng: np.random.Generator, m: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    q, p = unit(rng, m, d), unit(rng, n, d)
    return q @ p.T, p


def clock(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--m", type=int, default=1000)
    ap.add_argument("--k", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=64, help="dimension of the random unit vectors")
    ap.add_argument("--naive-n", type=int, default=50_000, help="pool size of the naive run")
    ap.add_argument("--naive-k", type=int, default=2_000)
    ap.add_argument("--other-n", type=int, default=100_000, help="pool size for UOT/KNN timings")
    ap.add_argument("--other-m", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "selection.json"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    res: dict = {"settings": vars(args)}

    # 1. Agreement and naive cost at a size the naive loop finishes.
    S_small, _ = similarity(rng, args.m, args.naive_n, args.d)
    naive, t_naive = clock(lambda: select_round_robin_naive(S_small, limit=args.naive_k))
    fast_small, t_fast_small = clock(lambda: select_round_robin(S_small, limit=args.naive_k).indices)
    res["same_ordering_at_naive_size"] = bool(np.array_equal(naive, fast_small))
    res["naive_seconds"] = t_naive
    res["fast_seconds_at_naive_size"] = t_fast_small
    S_small = None  # free it before the full-size run

    # 2. The full size: fast round-robin measured, naive extrapolated in k·N.
    S, _ = similarity(rng, args.m, args.n, args.d)
    fast, t_fast = clock(lambda: select_round_robin(S, limit=args.k))
    S = None
    naive_extrapolated = t_naive * (args.k / args.naive_k) * (args.n / args.naive_n)
    res.update(fast_seconds=t_fast, naive_seconds_extrapolated=naive_extrapolated,
               speedup=naive_extrapolated / t_fast, speedup_at_naive_size=t_naive / t_fast_small)

    # 3. UOT and KNN at N = other_n.
    S2, P2 = similarity(rng, args.other_m, args.other_n, args.d)
    _, res["uot_seconds"] = clock(lambda: select_uot(S2))
    _, res["knn_uniform_seconds"] = clock(lambda: select_knn_uniform(S2))
    kde, res["knn_kde_seconds"] = clock(lambda: select_knn_kde(S2, pool_similarity=lambda r, c: P2[r] @ P2[c].T))
    res["knn_K"] = select_knn_uniform(S2).settings["K"]

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(f"round-robin, M={args.m}, random unit vectors d={args.d}")
    print(f"  naive loop at N={args.naive_n:,}, k={args.naive_k:,}: {t_naive:.1f} s; fast {t_fast_small:.3f} s; "
          f"same ordering: {res['same_ordering_at_naive_size']}; ratio {res['speedup_at_naive_size']:.0f}x")
    print(f"  fast at N={args.n:,}, k={args.k:,}: {t_fast:.1f} s; naive extrapolated (linear in k*N from the run "
          f"above): {naive_extrapolated / 3600:.1f} h; ratio {res['speedup']:.0f}x (target >= 50x)")
    print(f"  at N={args.other_n:,}, M={args.other_m:,}: UOT {res['uot_seconds']:.1f} s, "
          f"KNN-uniform {res['knn_uniform_seconds']:.1f} s, KNN-KDE {res['knn_kde_seconds']:.1f} s (K={res['knn_K']})")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
