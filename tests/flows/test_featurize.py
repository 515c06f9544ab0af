"""Gradient shards on real multi-process Dask clusters give the same features: a local cluster of 1 and of 2
workers, and a separately started cluster (a scheduler and two workers, each its own process, on loopback)
joined by address as DASK_SCHEDULER_ADDRESS does."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.integration


def _external_cluster(tmp_path, workers: int = 2) -> tuple[str, list[subprocess.Popen]]:
    """``dask scheduler`` and ``dask worker`` processes, as on a real cluster (here all on 127.0.0.1)."""
    sched_file = tmp_path / "scheduler.json"
    dask_cli = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([*dask_cli, "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
                               "--scheduler-file", str(sched_file)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    deadline = time.time() + 60
    while not sched_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    address = json.loads(sched_file.read_text())["address"]
    procs += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                "--host", "127.0.0.1", "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) for _ in range(workers)]
    from distributed import Client

    with Client(address, timeout=30) as c:
        c.wait_for_workers(workers, timeout=60)
    return address, procs


def test_local_and_external_clusters_give_identical_features(prefect_harness, tiny_model_path, data_dir,
                                                              tmp_path) -> None:
    from prefect_dask import DaskTaskRunner

    from tests.fixtures.jobs import gradient_job, warm_checkpoints
    from winnow.data.loaders import load_records

    recs = load_records(data_dir / "good" / "pool.jsonl").records
    cks = warm_checkpoints(tiny_model_path, recs, tmp_path / "warm")
    vectors = []
    address, procs = _external_cluster(tmp_path)
    try:
        for workers in (1, 2, "external"):
            uri = str(tmp_path / f"store{workers}")
            job = gradient_job(uri, tiny_model_path, recs, cks, dim=128, shard_size=5, batch_size=3)
            runner = DaskTaskRunner(address=address) if workers == "external" else DaskTaskRunner(
                cluster_class="distributed.LocalCluster",
                cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                "host": "127.0.0.1", "dashboard_address": None})
            vectors.append(_featurise(runner, job, recs, uri))
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
    np.testing.assert_array_equal(vectors[0], vectors[1])
    np.testing.assert_array_equal(vectors[0], vectors[2])


def _featurise(runner, job, recs, uri) -> np.ndarray:
    from prefect import flow

    from flows.steps import run_feature_shards
    from winnow.features.shards import plan_ranges
    from winnow.results import FeaturePlan
    from winnow.store import feature_tables, lance

    @flow(task_runner=runner)
    def featurise() -> tuple[int, int]:
        return run_feature_shards([FeaturePlan(job, tuple(plan_ranges(len(recs), 5)))])

    assert featurise() == (4, 4)  # shards, computed
    return feature_tables.read_features(lance.connect(uri), "f").vectors
