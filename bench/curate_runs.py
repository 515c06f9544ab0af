"""One `winnow curate` run as a user runs it, for benchmarks that compare runs (bench/cascade.py, bench/bf16.py):
the console script in a subprocess, its own feature store, one WINNOW_HOME shared by a benchmark's runs (so the
fine-tunes of identical subsets are reused), its metrics.json and selected ids back. The run's feature store and
output folder are emptied first: a store left by an earlier run would hand it finished rows and hide their cost."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def curate(args: argparse.Namespace, name: str, store: str, extra: list[str]) -> dict:
    """One `winnow curate` in a subprocess; its metrics.json, plus the wall time of the whole command."""
    out = Path(args.work) / name
    for stale in (out, Path(store)):
        shutil.rmtree(stale, ignore_errors=True)
    env = {**os.environ, "WINNOW_HOME": str(Path(args.work) / "home"), "WINNOW_LANCEDB_URI": store}
    cmd = [str(ROOT / ".venv" / "bin" / "winnow"), "curate", "--config", args.config, "--pool", args.pool, "--query",
           args.query, "--test", args.test, "--out", str(out), "--budget", args.budget, *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{name}: winnow curate failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return {**finished(out), "reused_from": None, "command_seconds": round(time.perf_counter() - t0, 1)}


def finished(out: Path) -> dict:
    """A finished run's metrics.json and selected ids, read back from its output folder (a benchmark that reuses
    an earlier run says so in its JSON: that run did not share this invocation's load)."""
    metrics = json.loads((out / "metrics.json").read_text())
    ids = [json.loads(line)["id"] for line in (out / "selected.jsonl").read_text().splitlines()]
    return {"metrics": metrics, "ids": ids, "reused_from": str(out)}
