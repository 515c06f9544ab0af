"""Two curate flows on one store at the same time end with a consistent store and the same subsets."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_two_curate_flows_on_one_store(tiny_model_path, data_dir, tmp_path) -> None:
    from winnow.store import lance

    store = str(tmp_path / "store")
    procs = []
    for k in range(2):
        env = {**os.environ, "PREFECT_HOME": str(tmp_path / f"prefect{k}"), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.fixtures.curate_child", str(data_dir / "good"), tiny_model_path, store,
             str(tmp_path / f"work{k}"), str(tmp_path / f"run{k}")], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]

    db = lance.connect(store)
    pools = [t for t in db.list_tables().tables if t.startswith("pool__")]
    pool = db.open_table(pools[0]).to_arrow()
    assert len(pools) == 1 and sorted(pool.column("row_idx").to_pylist()) == list(range(20))
    assert len(set(pool.column("id").to_pylist())) == 20
    n_query = db.open_table([t for t in db.list_tables().tables if t.startswith("query__")][0]).count_rows()
    for prefix, rows in (("grads_adam__", 20), ("grads_sgd__", n_query)):
        tables = [t for t in db.list_tables().tables if t.startswith(prefix)]
        keys = db.open_table(tables[0]).to_arrow().column("key").to_pylist()
        assert len(tables) == 1 and len(keys) == len(set(keys)) == 2 * rows  # two checkpoints, no duplicates
    subsets = [(tmp_path / f"run{k}" / "selected.jsonl").read_text() for k in range(2)]
    assert subsets[0] == subsets[1] and subsets[0].count("\n") == 6
