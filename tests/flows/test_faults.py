"""Fault injection, short: SIGKILL the featurisation flow (once inside a LanceDB write), re-run, compare."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


def test_killed_featurisation_recovers_exactly(tmp_path) -> None:
    out = tmp_path / "faults.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "faults.py"), "--trials", "2", "--rows", "24",
                           "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["runs_recovered"] == 2
    assert res["rows_lost"] == res["rows_duplicated"] == res["vectors_differ"] == 0
    assert res["finished_shards_recomputed"] == 0
    assert res["faults_injected"] >= 1
