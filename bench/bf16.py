"""bf16 autocast for gradient features against fp32, as a user runs it: `winnow curate` twice on the same data,
once in fp32 and once with `features.autocast_bf16=true`, each in a fresh feature store (the warm-up, the budget
and everything else equal). Reports the featurisation wall time of each (warm-up excluded) and their ratio, the
overlap of the two selected subsets at the budget (the criterion: ≥ 0.98 to make bf16 a default), and the test
metric of each fine-tune. Both runs in one invocation, so the ratio shares the machine's load.

    python bench/bf16.py --pool data/bench-cascade/pool.jsonl --query ... --test ... --budget 5%
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from curate_runs import ROOT, curate, finished


def cpu_flags() -> list[str]:
    """The CPU's bf16 instructions (AMX, AVX-512 BF16): what makes bf16 autocast fast on a CPU."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    return sorted({f for f in ("amx_bf16", "amx_tile", "avx512_bf16") if f in text.split()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool", default="data/bench-cascade/pool.jsonl")
    ap.add_argument("--query", default="data/bench-cascade/query.jsonl")
    ap.add_argument("--test", default="data/bench-cascade/test.jsonl")
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--budget", default="5%")
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench" / "bf16-work"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "bf16.json"))
    ap.add_argument("--fp32-from", default="", help="the output folder of a finished fp32 curate of the same pool, "
                                                    "config and budget (e.g. bench/cascade.py's full run) to compare "
                                                    "against instead of running it again; the JSON records it")
    args = ap.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    runs = {"fp32": finished(Path(args.fp32_from)) if args.fp32_from
            else curate(args, "fp32", str(Path(args.work) / "store-fp32"), []),
            "bf16": curate(args, "bf16", str(Path(args.work) / "store-bf16"), ["--set", "features.autocast_bf16=true"])}

    def featurisation(r: dict) -> float:
        t = r["metrics"]["timings"]["actual"]
        return t["features"] - t["warmup"]

    k = len(runs["fp32"]["ids"])
    overlap = len(set(runs["fp32"]["ids"]) & set(runs["bf16"]["ids"])) / k
    metric = runs["fp32"]["metrics"]["results"]["selected"]["metric"]
    res = {"settings": vars(args), "device": "cuda" if torch.cuda.is_available() else "cpu",
           "cpu": platform.processor() or platform.machine(), "cpu_bf16_flags": cpu_flags(),
           "torch": torch.__version__, "budget": k, "metric": metric,
           **{name: {"featurisation_seconds": round(featurisation(r), 1), "timings": r["metrics"]["timings"]["actual"],
                     "selected_metric": r["metrics"]["results"]["selected"][metric],
                     "reused_from": r.get("reused_from")} for name, r in runs.items()},
           "ratios": {"bf16_topk_overlap": round(overlap, 3),
                      "bf16_speedup": round(featurisation(runs["fp32"]) / featurisation(runs["bf16"]), 3)}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps({k: res[k] for k in ("device", "cpu_bf16_flags", "budget", "ratios")}, indent=1))


if __name__ == "__main__":
    main()
