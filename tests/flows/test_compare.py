"""The compare flow: three representations × several selectors over one store, on a Dask cluster."""
from __future__ import annotations

import csv

import pytest

pytestmark = pytest.mark.integration


def test_compare_all_representations(prefect_harness, tiny_model_path, data_dir, tmp_path) -> None:
    from prefect_dask import DaskTaskRunner

    from flows.compare import compare
    from winnow.settings import build_settings

    settings = build_settings({"model": {"name": tiny_model_path, "max_length": 64},
                               "warmup": {"fraction": 0.5, "train": {"epochs": 2, "lr": 0.01}},
                               "features": {"proj_dim": 64, "shard_size": 10}, "selection": {"budget": 5}})
    runner = DaskTaskRunner(cluster_class="distributed.LocalCluster",
                            cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                                            "host": "127.0.0.1", "dashboard_address": None})
    rows = compare.with_options(task_runner=runner)(
        pool=str(data_dir / "good" / "pool.jsonl"), query=str(data_dir / "good" / "query.jsonl"),
        out=str(tmp_path / "cmp"), settings=settings.model_dump(mode="json"), store_uri=str(tmp_path / "store"),
        work_dir=str(tmp_path / "work"), selectors=["round_robin", "uot", "knn_kde", "random"])
    assert [(r["representation"], r["selector"]) for r in rows] == [
        (rep, sel) for rep in ("gradients", "hidden", "embedding") for sel in ("round_robin", "uot", "knn_kde", "random")]
    assert all(r["size"] == 5 for r in rows)
    with open(tmp_path / "cmp" / "compare.csv") as f:
        assert len(list(csv.DictReader(f))) == 12
    for rep in ("gradients", "hidden", "embedding"):
        by = {r["selector"]: r for r in rows if r["representation"] == rep}
        # k = 5 >= M = 4 queries: round-robin covers every query's nearest example, the minimum possible
        assert by["round_robin"]["distance_nearest"] <= by["random"]["distance_nearest"]
        assert (tmp_path / "cmp" / rep / "uot.jsonl").exists()
