"""The curate flow end to end on the tiny model, on a real two-process local Dask cluster."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _run(tmp: Path, data: Path, model: str):
    from prefect_dask import DaskTaskRunner

    from flows.curate import curate
    from winnow.settings import build_settings

    settings = build_settings({"model": {"name": model, "max_length": 64},
                               "warmup": {"fraction": 0.5, "train": {"epochs": 2, "lr": 0.01}},
                               "features": {"proj_dim": 128, "shard_size": 8, "batch_size": 4},
                               "selection": {"budget": 6}, "finetune": {"epochs": 1, "lr": 0.01},
                               "eval": {"max_new_tokens": 3}})
    runner = DaskTaskRunner(cluster_class="distributed.LocalCluster",
                            cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                                            "host": "127.0.0.1", "dashboard_address": None})
    return curate.with_options(task_runner=runner)(
        pool=str(data / "pool.jsonl"), query=str(data / "query.jsonl"), test=str(data / "test.jsonl"),
        out=str(tmp / "run"), settings=settings.model_dump(mode="json"), store_uri=str(tmp / "store"),
        work_dir=str(tmp / "work"))


def test_curate_end_to_end_and_rerun_skips_everything(prefect_harness, tiny_model_path, data_dir, tmp_path) -> None:
    from winnow.store import lance, shard_markers

    # A pool with one bad record: it must be quarantined and listed, never silently dropped.
    data = tmp_path / "data"
    data.mkdir()
    for name in ("query.jsonl", "test.jsonl"):
        (data / name).write_text((data_dir / "good" / name).read_text())
    (data / "pool.jsonl").write_text((data_dir / "good" / "pool.jsonl").read_text() + '{"prompt": "x"}\n')

    result = _run(tmp_path, data, tiny_model_path)
    run = tmp_path / "run"
    assert set(result["results"]) == {"base", "random", "selected"} and result["budget"] == 6
    selected = [json.loads(l) for l in (run / "selected.jsonl").read_text().splitlines()]
    randoms = [json.loads(l) for l in (run / "random.jsonl").read_text().splitlines()]
    assert len(selected) == len(randoms) == 6 and len({r["id"] for r in selected}) == 6
    report = (run / "report.md").read_text()
    assert "| pool | 21 | 20 | 1 |" in report and "pool.jsonl:21` field `response`: missing" in report
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"exact_match", "response_loss"} <= set(metrics["results"]["selected"])
    assert (run / "subset_sources.png").stat().st_size > 1000

    db = lance.connect(str(tmp_path / "store"))
    markers = db.open_table(shard_markers.MARKERS).to_arrow()
    first = dict(zip(markers.column("key").to_pylist(), markers.column("finished_at").to_pylist()))
    assert len(first) == 2 * (3 + 1)  # 2 checkpoints x (3 pool shards + 1 query shard)

    _run(tmp_path, data, tiny_model_path)  # a second run recomputes no shard
    markers = db.open_table(shard_markers.MARKERS).to_arrow()
    assert dict(zip(markers.column("key").to_pylist(), markers.column("finished_at").to_pylist())) == first
    pool_tables = [t for t in db.list_tables().tables if t.startswith("grads_adam__")]
    assert len(pool_tables) == 1 and db.open_table(pool_tables[0]).count_rows() == 2 * 20


def test_curate_with_nice_label_free_and_cached_generations(prefect_harness, tiny_model_path, data_dir, tmp_path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect_dask import DaskTaskRunner

    from flows.curate import curate
    from winnow.settings import build_settings

    # Queries without gold answers' use: a label-free user reward.
    settings = build_settings({"model": {"name": tiny_model_path, "max_length": 64},
                               "warmup": {"fraction": 0.5, "train": {"epochs": 2, "lr": 0.01}},
                               "features": {"proj_dim": 128, "shard_size": 10}, "selection": {"budget": 6},
                               "finetune": {"epochs": 1, "lr": 0.01}, "eval": {"max_new_tokens": 3},
                               "nice": {"metric": "tests.fixtures.rewards:length", "samples": 3, "max_new_tokens": 4}})

    def run():
        runner = DaskTaskRunner(cluster_class="distributed.LocalCluster",
                                cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                                                "host": "127.0.0.1", "dashboard_address": None})
        return curate.with_options(task_runner=runner)(
            pool=str(data_dir / "good" / "pool.jsonl"), query=str(data_dir / "good" / "query.jsonl"),
            test=str(data_dir / "good" / "test.jsonl"), out=str(tmp_path / "run"),
            settings=settings.model_dump(mode="json"), store_uri=str(tmp_path / "store"),
            work_dir=str(tmp_path / "work"), return_state=True)

    first = run()
    result = first.result()
    assert set(result["results"]) == {"base", "random", "selected", "nice"}
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## NICE rewards per query" in report and "mean_reward" in report
    second = run()

    async def sample_states(flow_run_id):
        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            return [r.state.name for r in runs if r.name.startswith("nice-sample")]

    import asyncio

    states = asyncio.run(sample_states(second.state_details.flow_run_id))
    assert states and all(s == "Cached" for s in states)


def test_grown_pool_keeps_its_feature_space_and_rewarm_starts_a_new_one(prefect_harness, tiny_model_path, data_dir,
                                                                         tmp_path) -> None:
    """Tables are named by content: a copy of the pool file elsewhere reuses its warm-up and features. A pool
    file that grows under a dataset id (data.dataset_id) keeps its table and featurises only its new rows under the
    first warm-up (and the report says so); the same table given by name with rewarm=True trains a new warm-up
    and featurises every row again."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.curate import curate
    from winnow.settings import build_settings

    settings = build_settings({"model": {"name": tiny_model_path, "max_length": 64}, "data": {"dataset_id": "mypool"},
                               "warmup": {"fraction": 0.5, "train": {"epochs": 2, "lr": 0.01}},
                               "features": {"proj_dim": 64, "shard_size": 8, "batch_size": 4},
                               "selection": {"budget": 4}, "finetune": {"epochs": 1, "lr": 0.01},
                               "eval": {"max_new_tokens": 2}}).model_dump(mode="json")
    good = data_dir / "good"
    lines = (good / "pool.jsonl").read_text().splitlines(keepends=True)
    pool = tmp_path / "pool.jsonl"

    def run(name: str, spec: str, rewarm: bool = False) -> dict[str, str]:
        curate.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
            pool=spec, query=str(good / "query.jsonl"), test=str(good / "test.jsonl"), out=str(tmp_path / name),
            settings=settings, store_uri=str(tmp_path / "store"), work_dir=str(tmp_path / "work"), rewarm=rewarm)
        rows = json.loads((tmp_path / name / "metrics.json").read_text())["artifacts"]
        return {**{r["artifact"]: r["status"] for r in rows}, "report": (tmp_path / name / "report.md").read_text()}

    pool.write_text("".join(lines[:12]))
    first = run("first", str(pool))
    assert first["warm-up"] == "computed" and first["features"] == "3 of 3 shards computed"
    by_content = {**settings, "data": {**settings["data"], "dataset_id": ""}}
    copy = tmp_path / "elsewhere" / "renamed.jsonl"
    copy.parent.mkdir()
    copy.write_text(pool.read_text())
    for name, spec in (("by-content", str(pool)), ("copy", str(copy))):
        curate.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
            pool=spec, query=str(good / "query.jsonl"), test=str(good / "test.jsonl"), out=str(tmp_path / name),
            settings=by_content, store_uri=str(tmp_path / "store"), work_dir=str(tmp_path / "work"))
    again = {r["artifact"]: r["status"] for r in json.loads((tmp_path / "copy" / "metrics.json").read_text())["artifacts"]}
    assert again["warm-up"] == "reused" and again["features"] == "0 of 3 shards computed"  # moved: same content

    pool.write_text("".join(lines))  # 8 new rows: shard [0:8) is kept, [8:16) and [16:20) are new
    grown = run("grown", str(pool))
    assert grown["warm-up"].startswith("kept: the feature space of table version")
    assert grown["features"] == "2 of 4 shards computed"
    assert "a grown pool featurises only its new rows" in grown["report"]

    fresh = run("rewarm", "mypool", rewarm=True)  # the table by name, as `winnow ingest` fills
    assert fresh["warm-up"] == "computed" and fresh["features"] == "4 of 4 shards computed"
    assert "| pool | 20 | 20 | 0 |" in fresh["report"]


def test_curate_with_a_prefilter_cascade_computes_gradients_for_the_candidates_only(prefect_harness, tiny_model_path,
                                                                                   data_dir, tmp_path) -> None:
    """Hidden states rank all 20 rows; gradients are computed for factor × budget + tail = 8 + 2 candidates; the
    selected subset comes from them, random from the whole pool; a rerun computes nothing; a later full run
    featurises every row (its unmarked ranges are computed whole)."""
    from prefect.task_runners import ThreadPoolTaskRunner

    import pyarrow.parquet as pq

    from flows.curate import curate
    from winnow.selection.cascade import read_cascade
    from winnow.settings import build_settings
    from winnow.store import lance

    base = {"model": {"name": tiny_model_path, "max_length": 64},
            "warmup": {"fraction": 0.5, "train": {"epochs": 2, "lr": 0.01}},
            "features": {"proj_dim": 64, "shard_size": 4, "batch_size": 4},
            "selection": {"budget": 4, "prefilter": {"representation": "hidden", "factor": 2, "tail": 0.25}},
            "finetune": {"epochs": 1, "lr": 0.01}, "eval": {"max_new_tokens": 2}}
    good = data_dir / "good"

    def run(name: str, settings: dict) -> dict:
        curate.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
            pool=str(good / "pool.jsonl"), query=str(good / "query.jsonl"), test=str(good / "test.jsonl"),
            out=str(tmp_path / name), settings=build_settings(settings).model_dump(mode="json"),
            store_uri=str(tmp_path / "store"), work_dir=str(tmp_path / "work"))
        return json.loads((tmp_path / name / "metrics.json").read_text())

    first = run("cascade", base)
    db = lance.connect(str(tmp_path / "store"))
    grads = [t for t in db.list_tables().tables if t.startswith("grads_adam__")]
    cascades = [t for t in db.list_tables().tables if t.startswith("cascade__")]
    assert len(grads) == len(cascades) == 1
    assert db.open_table(grads[0]).count_rows() == 2 * 10  # 2 checkpoints x 10 candidates, not 20 rows
    cand, _ = read_cascade(str(tmp_path / "store"), cascades[0])
    assert len(cand) == 10
    sel = pq.read_table(tmp_path / "cascade" / "selected_ordering.parquet").to_pydict()
    assert sorted(sel["row_idx"]) == list(range(20)) and set(sel["row_idx"][:4]) <= set(cand.tolist())
    rnd = json.loads(pq.read_schema(tmp_path / "cascade" / "random_ordering.parquet").metadata[b"winnow"])
    assert rnd["pool_table"].startswith("hidden__")  # the baseline is drawn over the whole pool
    report = (tmp_path / "cascade" / "report.md").read_text()
    assert "hidden ranked 20; gradients for 10 (2 from the tail)" in report

    again = run("again", base)
    assert {r["artifact"]: r["status"] for r in again["artifacts"]}["features"].startswith("0 of ")

    full = run("full", {**base, "selection": {"budget": 4}})  # the whole pool, by ranges, into the same table
    assert db.open_table(grads[0]).count_rows() == 2 * 20
    assert first["results"]["random"] == full["results"]["random"]  # random is the same subset either way
