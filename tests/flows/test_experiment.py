"""The experiment flow end to end on the tiny model: every cell runs once, a re-run computes nothing, and an
added seed computes only its own cells; results, statistics, plots and report are written."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.integration
OVERRIDES = ["model.max_length=64", "warmup.fraction=0.5", "warmup.train.epochs=2", "warmup.train.lr=0.01",
             "features.proj_dim=64", "features.shard_size=10", "features.batch_size=5", "finetune.epochs=1",
             "finetune.lr=0.01", "eval.max_new_tokens=3"]


def test_experiment_runs_each_cell_once(prefect_harness, tiny_model_path, data_dir, tmp_path) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.experiment import experiment
    from winnow.settings import build_settings

    good = data_dir / "good"
    exp = {"name": "tiny", "pool": str(good / "pool.jsonl"),
           "targets": [{"name": "t", "query": str(good / "query.jsonl"), "test": str(good / "test.jsonl")}],
           "overrides": [*OVERRIDES, f"model.name={tiny_model_path}"], "representations": ["gradients", "hidden"],
           "selectors": ["rr"], "budgets": [4, 6], "seeds": [0],
           "distance": {"representation": "gradients", "quantiles": 2, "sample": 3}}
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(exp))
    run = experiment.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))
    settings = build_settings(None, exp["overrides"]).model_dump(mode="json")  # what `winnow experiment` passes
    kw = dict(config=str(config), out=str(tmp_path / "out"), settings=settings, store_uri=str(tmp_path / "store"),
              work_dir=str(tmp_path / "work"))

    first = run(**kw)
    assert (first["cells"], first["computed"]) == (1 + 1 + 2 * 3 + 2, 10)
    df = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert len(df) == 10 and set(df.method) == {"zero_shot", "full", "random", "gradients/round_robin",
                                                "hidden/round_robin", "quantile"}
    assert sorted(df[df.method == "random"].budget_size) == [4, 6]
    assert set(df[df.method == "full"].budget_size) == {20} and set(df[df.method == "quantile"].budget_size) == {3}
    assert df[df.method != "zero_shot"].distance.notna().all()
    assert (tmp_path / "out" / "results.csv").exists()
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Paired difference to random" in report and "Distance quantiles" in report
    for png in ("budget_t.png", "distance_t.png", "quantiles_t.png"):
        assert (tmp_path / "out" / png).stat().st_size > 5000

    assert run(**kw)["computed"] == 0  # nothing is recomputed
    exp["seeds"] = [0, 1]
    config.write_text(yaml.safe_dump(exp))
    more = run(**kw)
    assert (more["cells"], more["computed"]) == (19, 9)  # seed 1: full, 2 x (random + 2 methods), 2 quantiles
    paired = pd.read_csv(tmp_path / "out" / "paired_t_exact_match.csv")
    assert set(paired.n_seeds) == {2} and len(paired) == 4


def test_mixture_methods_run_as_cells(prefect_harness, tiny_model_path, data_dir, tmp_path) -> None:
    """TaskPGM and DUET are methods of the experiment at the grid's budgets and seeds: one row each in the
    results and in the paired comparison with random; DUET's study lives in the experiment's folder."""
    import optuna
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.experiment import experiment
    from winnow.settings import build_settings

    good = data_dir / "good"
    overrides = [*OVERRIDES, f"model.name={tiny_model_path}", "mixture.trials=1", "mixture.sampler=tpe",
                 "mixture.proxy.epochs=1", "mixture.proxy.lr=0.01"]
    exp = {"name": "mix", "pool": str(good / "pool.jsonl"),
           "targets": [{"name": "t", "query": str(good / "query.jsonl"), "test": str(good / "test.jsonl")}],
           "overrides": overrides, "representations": ["gradients"], "selectors": ["rr"], "budgets": [6],
           "seeds": [0], "baselines": ["random"], "mixtures": ["taskpgm", "duet"]}
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(exp))
    res = experiment.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
        config=str(config), out=str(tmp_path / "out"), settings=build_settings(None, overrides).model_dump(mode="json"),
        store_uri=str(tmp_path / "store"), work_dir=str(tmp_path / "work"))
    assert (res["cells"], res["computed"]) == (4, 4)
    df = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert set(df.method) == {"random", "gradients/round_robin", "mixture/taskpgm", "mixture/duet"}
    assert set(df.budget_size) == {6} and df.distance.notna().all()
    paired = pd.read_csv(tmp_path / "out" / "paired_t_exact_match.csv")
    assert {"mixture/taskpgm", "mixture/duet"} <= set(paired.method)
    study = optuna.load_study(study_name="mix-t-b6-s0", storage=f"sqlite:///{tmp_path / 'out' / 'mixture.db'}")
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 4  # 3 warm starts + 1 trial


def test_the_subset_utility_correlation_trains_its_subsets_on_validation(prefect_harness, tiny_model_path, data_dir,
                                                                         tmp_path) -> None:
    """``utility``: its subsets fine-tune once each and score on the validation split; ρ, its interval and the
    scatter reach the report, and the verdict line carries ρ. The validation rows planted in the pool are found
    (planted recall), the ceiling baseline trains on exactly the query rows repeated to the budget, and the
    verdict gives the share of its gain. A target without ``val`` is a one-line error."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.experiment import experiment
    from winnow.errors import ConfigError
    from winnow.experiment.grid import load_experiment
    from winnow.settings import build_settings

    good = data_dir / "good"
    exp = {"name": "lds", "pool": str(good / "pool.jsonl"),
           "targets": [{"name": "t", "query": str(good / "query.jsonl"), "test": str(good / "test.jsonl"),
                        "val": str(good / "query.jsonl"), "metric": "response_loss"}],
           "overrides": [*OVERRIDES, f"model.name={tiny_model_path}"], "budgets": [5], "seeds": [0],
           "baselines": ["zero_shot", "random", "ceiling"], "utility": {"subsets": 4}}
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(exp))
    settings = build_settings(None, exp["overrides"]).model_dump(mode="json")
    out = experiment.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
        config=str(config), out=str(tmp_path / "out"), settings=settings, store_uri=str(tmp_path / "store"),
        work_dir=str(tmp_path / "work"))
    (u,) = out["utility"]
    assert u["subsets"] == 4 and u["budget"] == 5 and len(u["points"]) == 4 and -1 <= u["rho"] <= 1
    assert u["metric"] == "−response_loss" and len({p["observed"] for p in u["points"]}) == 4
    assert len(list((tmp_path / "out" / "utility" / "t").glob("subset[0-9].jsonl"))) == 4
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Subset utility (validation split)" in report and (tmp_path / "out" / "utility_t.png").exists()
    assert "scores predict validation outcomes" in out["verdicts"][0]
    planted = out["planted"]["t"]["gradients/round_robin"]
    # the pool holds the target's own task too, so the planted copies share the budget with it (the ≥ 0.9 pin,
    # on a pool without it, is tests/flows/test_validate.py): above chance and in the top half
    assert planted["planted"] == 4 and planted["recall"] > planted["chance"] and planted["mean_percentile"] < 50, planted
    assert "planted recall" in out["verdicts"][0] and "## Planted recall (validation split)" in report
    queries = [json.loads(line)["messages"] for line in (good / "query.jsonl").read_text().splitlines()]
    ceiling = (tmp_path / "out" / "subsets" / "t" / "ceiling_b5" / "ceiling.jsonl").read_text().splitlines()
    assert [json.loads(line)["messages"] for line in ceiling] == [queries[i % 4] for i in range(5)]
    assert "ceiling" in out["verdicts"][0]
    del exp["targets"][0]["val"]
    config.write_text(yaml.safe_dump(exp))
    with pytest.raises(ConfigError, match="no val split"):
        load_experiment(str(config))
