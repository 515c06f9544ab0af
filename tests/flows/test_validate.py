"""`winnow curate --validate` by outcome: copies of the query rows planted in the pool are found within the
budget, the ceiling arm trains on exactly the rows it names, and the verdict leads the report."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_planted_copies_of_the_queries_are_found_and_the_ceiling_trains_on_its_rows(
        prefect_harness, tiny_model_path, data_dir, tmp_path) -> None:
    from prefect_dask import DaskTaskRunner

    from flows.curate import curate
    from winnow.settings import build_settings

    good = data_dir / "good"
    val = tmp_path / "val.jsonl"  # the queries again under other ids: what a representation must find
    val.write_text("".join(json.dumps({**r, "id": f"planted-{i}"}) + "\n" for i, r in enumerate(_rows(good / "query.jsonl"))))
    pool = tmp_path / "pool.jsonl"  # the other tasks only: the planted rows are the in-domain data to find
    pool.write_text("".join(json.dumps(r) + "\n" for r in _rows(good / "pool.jsonl") if r.get("task") != "parity"))
    ceiling = tmp_path / "ceiling.jsonl"
    ceiling.write_text("".join(json.dumps({**r, "id": f"c{i}"}) + "\n" for i, r in enumerate(_rows(good / "query.jsonl")[1:])))
    settings = build_settings({"model": {"name": tiny_model_path, "max_length": 64},
                               "warmup": {"fraction": 0.5, "train": {"epochs": 2, "lr": 0.01}},
                               "features": {"proj_dim": 128, "shard_size": 8, "batch_size": 4},
                               "selection": {"budget": 4}, "finetune": {"epochs": 1, "lr": 0.01},
                               "eval": {"max_new_tokens": 3}})
    runner = DaskTaskRunner(cluster_class="distributed.LocalCluster",
                            cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                                            "host": "127.0.0.1", "dashboard_address": None})
    result = curate.with_options(task_runner=runner)(
        pool=str(pool), query=str(good / "query.jsonl"), test=str(good / "test.jsonl"),
        out=str(tmp_path / "run"), settings=settings.model_dump(mode="json"), store_uri=str(tmp_path / "store"),
        work_dir=str(tmp_path / "work"), diagnose=True, val=str(val), ceiling=str(ceiling))
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    planted = metrics["planted_recall"]["selected"]
    assert planted["planted"] == 4 and planted["recall"] >= 0.9 and planted["chance"] < 0.3, str(planted)
    assert [r["id"] for r in _rows(run / "ceiling.jsonl")] == ["c0", "c1", "c2"]
    assert set(result["results"]) == {"base", "random", "selected", "ceiling"}
    report = (run / "report.md").read_text()
    assert report.index("## Verdict") < report.index("## Result") and "planted recall" in report
    assert result["verdict"]["headline"].startswith(("yes:", "no:", "not settled:"))


def test_the_default_ceiling_is_the_query_rows_repeated_to_the_budget(tmp_path, data_dir) -> None:
    from flows.validation import ceiling_subset

    sub = ceiling_subset("", str(data_dir / "good" / "query.jsonl"), 10, tmp_path)
    queries = [r["messages"] for r in _rows(data_dir / "good" / "query.jsonl")]
    assert [r["messages"] for r in _rows(Path(sub.path))] == [queries[i % 4] for i in range(10)] and sub.size == 10
