"""Gradient shards on a real multi-process Dask cluster give the same features from 1 and 2 workers."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.integration


def test_one_and_two_workers_give_identical_features(prefect_harness, tiny_model_path, data_dir, tmp_path) -> None:
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    from flows.featurize import run_feature_shards
    from tests.fixtures.jobs import gradient_job, warm_checkpoints
    from winnow.data.loaders import load_records
    from winnow.features.shards import plan_ranges
    from winnow.store import lance

    recs = load_records(data_dir / "good" / "pool.jsonl").records
    cks = warm_checkpoints(tiny_model_path, recs, tmp_path / "warm")
    vectors = []
    for workers in (1, 2):
        uri = str(tmp_path / f"store{workers}")
        job = gradient_job(uri, tiny_model_path, recs, cks, dim=128, shard_size=5, batch_size=3)
        runner = DaskTaskRunner(cluster_class="distributed.LocalCluster",
                                cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                                "host": "127.0.0.1", "dashboard_address": None})

        @flow(task_runner=runner)
        def featurise() -> dict:
            return run_feature_shards([{"job": job, "ranges": plan_ranges(len(recs), 5)}])

        assert featurise() == {"shards": 4, "computed": 4, "skipped": 0}
        vectors.append(lance.read_features(lance.connect(uri), "f").vectors)
    np.testing.assert_array_equal(vectors[0], vectors[1])
