"""Two processes featurising the same table at once end with a consistent table: every key once, and the
same vectors as a single uninterrupted run (writes merge by key; commit conflicts are retried)."""
from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.jobs import gradient_job, warm_checkpoints
from winnow.data.records import parse_record
from winnow.features.shards import FeatureJob, featurize_range, plan_ranges
from winnow.store import feature_tables, lance

pytestmark = pytest.mark.integration
ROWS = 24


def _work(job: FeatureJob, order: list[tuple[int, int]]) -> None:
    import torch

    torch.set_num_threads(1)
    for s, e in order:
        featurize_range(job, s, e, progress=False)


def test_two_concurrent_featurisations_agree_with_one(tiny_model_path: str, tmp_path: Path) -> None:
    recs = [parse_record({"prompt": f"q{i} " + "the quick brown fox " * (i % 4 + 1), "response": f"a{i}",
                          "source": "s", "task": "t", "id": f"r{i}"}) for i in range(ROWS)]
    cks = warm_checkpoints(tiny_model_path, recs, tmp_path / "warm")
    jobs = {name: gradient_job(str(tmp_path / name), tiny_model_path, recs, cks, dim=64, shard_size=4, batch_size=2)
            for name in ("single", "shared")}
    ranges = plan_ranges(ROWS, 4)
    _work(jobs["single"], ranges)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_work, args=(jobs["shared"], order)) for order in (ranges, ranges[::-1])]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
        assert p.exitcode == 0
    a = lance.connect(str(tmp_path / "single")).open_table("f").to_arrow()
    b = lance.connect(str(tmp_path / "shared")).open_table("f").to_arrow()
    keys = b.column("key").to_pylist()
    assert len(keys) == len(set(keys)) == 2 * ROWS
    np.testing.assert_array_equal(feature_tables.read_features(lance.connect(str(tmp_path / "single")), "f").vectors,
                                  feature_tables.read_features(lance.connect(str(tmp_path / "shared")), "f").vectors)
    assert a.num_rows == b.num_rows
