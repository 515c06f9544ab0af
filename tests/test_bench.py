"""The benches run: a small instance of each JSON-writing bench that has no other prerequisite."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_streaming_bench_writes_its_ratios(tmp_path) -> None:
    out = tmp_path / "streaming.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "streaming.py"), "--rows", "3000", "--dim", "16", "--out",
                    str(out)], check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    assert result["rows"] == 3000 and result["select_vs_read_all"] > 0 and result["influence_vs_read_all"] > 0


def test_gpu_script_runs_on_cpu_and_says_what_it_skipped(tmp_path) -> None:
    """bench/gpu.sh stays runnable where there is no GPU: the CUDA tests skip, the engine runs the tiny model,
    and gpu.json names what needed CUDA, so a CPU run can never pass for a GPU measurement."""
    import os

    import torch

    if torch.cuda.is_available():
        import pytest

        pytest.skip("a GPU machine runs the full script, not its CPU branch")
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh")], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "BENCH_OUT": str(tmp_path), "PY": sys.executable})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "gpu.json").read_text())
    assert summary["cuda"] is False and "dask-cuda" in summary["skipped"] and not summary["ratios"]
    smoke = summary["runs"]["gpu_cpu_smoke"]
    assert smoke["engine_ex_per_s"] > 0 and smoke["max_rel_err_vs_loop"] < 1e-4 and smoke["mfu"] is None
    assert "4 skipped" in proc.stdout and "skipped (needs CUDA)" in proc.stdout
