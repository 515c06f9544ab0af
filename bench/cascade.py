"""The prefilter cascade against full gradient selection, as a user runs it: `winnow curate` once with gradient
features for the whole pool, then once per factor c with `selection.prefilter` (each in a fresh feature store, so
its featurisation cost is what the cascade really costs); the same warm-up, budget, fine-tune and test set.

Per c it reports: the candidates' count, the featurisation wall time (warm-up excluded: it is the same in both)
and its ratio to the full run's, the overlap of the selected subset with full selection's, and the test metric of
the fine-tune on each subset (one seed; the random arm is the same subset in every run). All runs in one
invocation, so the ratios share the machine's load.

    python bench/cascade.py --pool data/bench-cascade/pool.jsonl --query ... --test ...   # see --help
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from curate_runs import ROOT, curate, finished


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool", default="data/bench-cascade/pool.jsonl",
                    help="default: `winnow demo-data --per-source 20 --out data/bench-cascade` (580 examples)")
    ap.add_argument("--query", default="data/bench-cascade/query.jsonl")
    ap.add_argument("--test", default="data/bench-cascade/test.jsonl")
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--budget", default="5%")
    ap.add_argument("--factors", type=float, nargs="*", default=[2, 5, 10],
                    help="none: the full run alone (a later --reuse-full adds factors against it)")
    ap.add_argument("--tail", type=float, default=0.1)
    ap.add_argument("--prefilter", default="hidden", choices=["hidden", "embedding"])
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench" / "cascade-work"))
    ap.add_argument("--reuse-full", action="store_true", help="take the full run from --work when it is there "
                                                               "(another prefilter or factor against the same run)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "cascade.json"))
    args = ap.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    metric_of = lambda r, arm: r["metrics"]["results"][arm][r["metrics"]["results"][arm]["metric"]]  # noqa: E731

    done = Path(args.work) / "full" / "metrics.json"
    if args.reuse_full and done.is_file():
        full = finished(done.parent)
    else:
        full = curate(args, "full", str(Path(args.work) / "store-full"), [])
    f_feat = full["metrics"]["timings"]["actual"]["features"] - full["metrics"]["timings"]["actual"]["warmup"]
    res: dict = {"settings": vars(args), "full": {
        "featurisation_seconds": round(f_feat, 1), "timings": full["metrics"]["timings"]["actual"],
        "predicted": full["metrics"]["timings"].get("predicted", {}), "reused_from": full.get("reused_from"),
        "selected_metric": metric_of(full, "selected"), "random_metric": metric_of(full, "random"),
        "metric": full["metrics"]["results"]["selected"]["metric"], "budget": full["metrics"]["budget"]},
        "cascades": [], "ratios": {}}
    k = len(full["ids"])
    for c in args.factors:
        tag = f"{args.prefilter}-c{c:g}"
        run = curate(args, f"cascade-{tag}", str(Path(args.work) / f"store-{tag}"),
                     ["--set", f"selection.prefilter.representation={args.prefilter}",
                      "--set", f"selection.prefilter.factor={c}", "--set", f"selection.prefilter.tail={args.tail}"])
        t = run["metrics"]["timings"]["actual"]
        feat = t["features"] - t["warmup"]
        overlap = len(set(run["ids"]) & set(full["ids"])) / k
        res["cascades"].append({"factor": c, "cascade": run["metrics"]["features"]["cascade"],
                                "featurisation_seconds": round(feat, 1), "cost_vs_full": round(feat / f_feat, 3),
                                "overlap_with_full": round(overlap, 3), "selected_metric": metric_of(run, "selected"),
                                "random_metric": metric_of(run, "random"), "timings": t})
        res["ratios"][f"cascade_overlap_{args.prefilter}_c{c:g}"] = round(overlap, 3)
        res["ratios"][f"cascade_cost_{args.prefilter}_c{c:g}"] = round(feat / f_feat, 3)
        print(json.dumps(res["cascades"][-1]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps({"full": res["full"], "ratios": res["ratios"]}, indent=1))


if __name__ == "__main__":
    main()
