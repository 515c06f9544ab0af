"""A Dask worker killed mid-shard: the nanny restarts it, the shard runs again, the flow completes with every row."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

pytestmark = pytest.mark.integration


def test_worker_killed_mid_shard_run_completes(prefect_harness, tiny_model_path, data_dir, tmp_path) -> None:
    from distributed import Client, LocalCluster
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    from flows.steps import run_feature_shards
    from winnow.results import FeaturePlan
    from tests.fixtures.jobs import gradient_job, warm_checkpoints
    from winnow.data.loaders import load_records
    from winnow.features.shards import plan_ranges
    from winnow.store import feature_tables, lance

    recs = load_records(data_dir / "good" / "pool.jsonl").records
    uri = str(tmp_path / "store")
    job = gradient_job(uri, tiny_model_path, recs, warm_checkpoints(tiny_model_path, recs, tmp_path / "warm"),
                       dim=128, shard_size=10, batch_size=1)
    db = lance.connect(uri)

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
    client = Client(cluster)
    killed: dict[str, int] = {}

    def kill_a_busy_worker() -> None:
        deadline = time.time() + 180
        while time.time() < deadline and not killed:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                time.sleep(1.5)  # inside the shard: model loaded, gradients under way
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
            time.sleep(0.05)

    threading.Thread(target=kill_a_busy_worker, daemon=True).start()

    @flow(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
    def featurise() -> tuple[int, int]:
        return run_feature_shards([FeaturePlan(job, tuple(plan_ranges(len(recs), 10)))])

    try:
        result = featurise()
    finally:
        client.close()
        cluster.close()
    assert killed, "no worker was killed: the test did not exercise worker loss"
    assert result[0] == 2  # shards
    fm = feature_tables.read_features(db, "f")
    assert fm.ids == [r.id for r in recs] and fm.vectors.shape[:2] == (2, len(recs))
    keys = db.open_table("f").to_arrow().column("key").to_pylist()
    assert len(keys) == len(set(keys))
