"""The planner: list scheduling and padding by hand, predictions that move the right way, a real probe."""
from __future__ import annotations

from dataclasses import replace

import pytest

from winnow.plan import Rates, alternatives, padded_tokens, plan, predict, probe, schedule, total, workload
from winnow.settings import build_settings


def test_schedule_is_a_list_schedule_with_dependencies() -> None:
    assert schedule([3, 3, 3], 2) == 6  # two at once, the third after the first
    assert schedule([3, 1, 1, 1], 2) == 3
    assert schedule([4, 4, 1, 1], 2, after=[None, None, 0, 1]) == 5  # each evaluation waits for its fine-tune
    assert schedule([], 3) == 0


def test_padded_tokens_counts_each_batch_at_its_longest() -> None:
    assert padded_tokens([5, 5, 5, 5], 2) == 20
    assert padded_tokens([1, 9], 2) == 18
    assert padded_tokens([1, 9], 1) == 10
    lengths = [1, 9] * 8
    assert padded_tokens(lengths, 2) == 80 < padded_tokens(lengths, 2, grouped=False)  # 8 x 1 + 8 x 9


RATES = Rates(device="cpu", threads=1, load_s=0.5, first_load_s=2.0, import_s=5.0, train_s_per_token=2e-3,
              grad_s_per_token=1e-3, cheap_s_per_token=3e-4, embed_s_per_item=0.01, embed_load_s=2.0,
              eval_s_per_item=0.2, write_s=0.1, peak_mb={"features": 1000.0})


def _plan(pool_rows: int = 10_000, **sets: str):
    cfg = build_settings({}, [f"{k}={v}" for k, v in sets.items()])
    w = workload(cfg, [100] * 50, pool_rows=pool_rows, query_rows=16, test_rows=60, arms=2, workers=2)
    return cfg, w, predict(w, RATES, cfg)


def test_predictions_move_the_way_the_work_does() -> None:
    cfg, w, base = _plan()
    assert total(_plan(20_000)[2]) > total(base)
    assert _plan(20_000)[2]["features"]["seconds"] > 1.9 * (base["features"]["seconds"] - base["warmup"]["seconds"])
    assert predict(replace(w, workers=4), RATES, cfg)["features"]["seconds"] < base["features"]["seconds"]
    assert _plan(**{"selection.budget": "0.2"})[2]["train_evaluate"]["seconds"] > base["train_evaluate"]["seconds"]
    cascade = _plan(**{"selection.prefilter.representation": "hidden"})
    assert cascade[1].candidates == 2750 and cascade[2]["features"]["seconds"] < 0.5 * base["features"]["seconds"]
    # 10,000 rows x 100 tokens x 4 checkpoints x 1 ms per token over 2 workers: the shards' compute alone is 2,000 s
    assert base["features"]["seconds"] > 2000 and base["features"]["peak_mb"] == 1000.0


def test_alternatives_price_each_cheaper_option() -> None:
    cfg, w, _ = _plan()
    options = {a["option"].split(" (")[0]: a for a in alternatives(w, RATES, cfg, [100] * 45 + [400] * 5)}
    assert options["3 warm-up checkpoints"]["seconds"] < options["as configured"]["seconds"]
    assert options["prefilter cascade"]["set"] == "selection.prefilter.representation=hidden"
    assert options["prefilter cascade"]["seconds"] < options["as configured"]["seconds"]
    assert options["4 workers"]["seconds"] < options["as configured"]["seconds"]
    assert any(o.startswith("max_length") for o in options)


@pytest.mark.integration
def test_probe_on_the_tiny_model(tiny_model_path, tmp_path) -> None:
    from pathlib import Path

    from winnow.data.loaders import load_records

    recs = load_records(Path(__file__).parents[1] / "data" / "good" / "pool.jsonl").records[:12]
    cfg = build_settings({"model": {"name": tiny_model_path, "max_length": 64}, "features": {"proj_dim": 64},
                          "selection": {"budget": 4, "prefilter": {"representation": "hidden"}}})
    rates = probe(tiny_model_path, cfg, recs, recs[:4], work_dir=tmp_path, examples=4)
    assert rates.grad_s_per_token > 0 and rates.train_s_per_token > 0 and rates.cheap_s_per_token > 0
    assert rates.eval_s_per_item > 0 and rates.load_s > 0 and set(rates.peak_mb) >= {"features", "fine-tune"}
    out = plan(rates, [20] * 12, cfg, pool_rows=12, query_rows=2, test_rows=4, arms=2, workers=1)
    assert out["total"] == total(out["phases"]) > 0 and out["alternatives"][0]["option"] == "as configured"
