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
