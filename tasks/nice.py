"""NICE tasks: sample and score in query chunks (Dask-parallel, cached), then write the query directions.

Samples and rewards are cached on their step's key: model content, adapter digest, query-file digest, sampling
settings and seed, so changing the selector or the budget never re-samples."""
from __future__ import annotations

import os
from typing import Any

from prefect import task

from tasks import step_task, unexpected_only
from tasks.evaluation import JUDGE_KEY_ENV
from winnow.fingerprint import ModelRef
from winnow.nice.pipeline import load_queries, nice_features, reward_for, sample, score
from winnow.settings import FeatureSettings, ModelSettings, NiceSettings
from winnow.steps import STEPS
from winnow.store import feature_tables, lance
from winnow.training.checkpoints import Checkpoint


@step_task("nice", name="nice-sample", where=("query_spec",), task_run_name="nice-sample[{start}:{end}]")
def nice_sample_task(base: ModelRef, checkpoint: Checkpoint, adapter_digest: str, query_spec: str, query_digest: str,
                     nice: NiceSettings, model: ModelSettings, start: int, end: int) -> list[list[dict[str, Any]]]:
    records = load_queries(query_spec, nice.metric)[start:end]
    return sample(base.path, checkpoint, records, nice, model, progress=False)


@step_task("nice", name="nice-reward", where=("query_spec",), task_run_name="nice-reward[{start}:{end}]")
def nice_reward_task(query_spec: str, query_digest: str, samples: list[list[dict[str, Any]]], nice: NiceSettings,
                     start: int, end: int, judge_calls: int | None = None) -> dict[str, Any]:
    """Rewards of one chunk, and the reward's counters (the judge's calls, timeouts, refusals). The judge's key
    comes from the worker's environment, so it never travels as a parameter or lands in a result or report."""
    reward = reward_for(nice, judge_calls=judge_calls, judge_api_key=os.environ.get(JUDGE_KEY_ENV, ""))
    return {"rewards": score(load_queries(query_spec, nice.metric)[start:end], samples, reward),
            "counters": dict(reward.counters)}


@task(name="nice-queries")
def nice_queries_task(query_spec: str, metric: str) -> int:
    """How many queries the NICE steps will read."""
    return len(load_queries(query_spec, metric))


@task(name="nice-features", retries=1, retry_condition_fn=unexpected_only)
def nice_features_task(store_uri: str, base: ModelRef, checkpoints: list[Checkpoint], adapter_digest: str,
                       query_spec: str, query_digest: str, samples: list[list[list[dict[str, Any]]]],
                       rewards: list[list[list[float]]], features: FeatureSettings, model: ModelSettings,
                       nice: NiceSettings) -> dict[str, Any]:
    """The query directions as a table named by what made them (its step's key); fp16 always, because a query
    without a direction at some checkpoint stores a zero row there, which sign bits cannot represent (the table
    holds one row per query, so its size does not matter)."""
    prov = {"representation": "nice", "metric": nice.metric, "nice": nice, "adapters": adapter_digest,
            "queries": query_digest, "checkpoints": [c.epoch for c in checkpoints],
            "checkpoint_weights": [round(c.weight, 8) for c in checkpoints], "projector": features.projector,
            "proj_dim": features.proj_dim, "sjlt_nnz": features.sjlt_nnz, "proj_seed": features.seed,
            "max_length": model.max_length, "codes": "fp16"}
    table = STEPS["nice"].key(inputs=prov, models=(base,))
    stored = {**{k: v for k, v in prov.items() if k != "nice"}, "nice": nice.model_dump(), "model": base.fingerprint}
    feature_tables.create_feature_table(lance.connect(store_uri), table, features.proj_dim, stored, codes="fp16")
    return nice_features(store_uri, table, base.path, checkpoints, load_queries(query_spec, nice.metric), samples,
                         rewards, features=features, model=model, nice=nice)
