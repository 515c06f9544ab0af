"""NICE tasks: sample and score in query chunks (Dask-parallel, cached), then write the query directions.

Samples and rewards are cached by Prefect on their inputs — model, adapter digest, query-file digest,
sampling settings, seed — so changing the selector or the budget never re-samples."""
from __future__ import annotations

import os
from typing import Any

from prefect import task

from tasks import cached_by_content, unexpected_only
from tasks.evaluation import JUDGE_KEY_ENV
from winnow.keys import code_version, digest
from winnow.recipe import step_code
from winnow.nice.pipeline import load_queries, nice_features, reward_for, sample, score
from winnow.settings import FeatureSettings, ModelSettings, NiceSettings
from winnow.store import feature_tables, lance
from winnow.training.checkpoints import Checkpoint



@task(name="nice-sample", cache_policy=cached_by_content("query_spec"), persist_result=True, retries=1, retry_condition_fn=unexpected_only,
      task_run_name="nice-sample[{start}:{end}]")
def nice_sample_task(model_path: str, checkpoint: Checkpoint, adapter_digest: str, query_spec: str, query_digest: str,
                     nice: NiceSettings, model: ModelSettings, start: int, end: int) -> list[list[dict[str, Any]]]:
    records = load_queries(query_spec, nice.metric)[start:end]
    return sample(model_path, checkpoint, records, nice, model, progress=False)


@task(name="nice-reward", cache_policy=cached_by_content("query_spec"), persist_result=True, retries=1, retry_condition_fn=unexpected_only,
      task_run_name="nice-reward[{start}:{end}]")
def nice_reward_task(query_spec: str, query_digest: str, samples: list[list[dict[str, Any]]], nice: NiceSettings,
                     start: int, end: int, judge_calls: int | None = None) -> dict[str, Any]:
    """Rewards of one chunk, and the reward's counters (the judge's calls, timeouts, refusals). The judge's key
    comes from the worker's environment, so it never travels as a parameter or lands in a result or report."""
    reward = reward_for(nice, judge_calls=judge_calls, judge_api_key=os.environ.get(JUDGE_KEY_ENV, ""))
    return {"rewards": score(load_queries(query_spec, nice.metric)[start:end], samples, reward),
            "counters": dict(reward.counters)}


@task(name="nice-queries")
def nice_queries_task(query_spec: str, metric: str) -> dict[str, int]:
    """How many queries the NICE steps will read, and how many of them carry a gold response."""
    records = load_queries(query_spec, metric)
    return {"n": len(records), "labelled": sum(r.labelled for r in records)}


@task(name="nice-features", retries=1, retry_condition_fn=unexpected_only)
def nice_features_task(store_uri: str, model_path: str, checkpoints: list[Checkpoint], adapter_digest: str,
                       query_spec: str, query_digest: str, samples: list[list[list[dict[str, Any]]]],
                       rewards: list[list[list[float]]], features: FeatureSettings, model: ModelSettings, nice: NiceSettings) -> dict[str, Any]:
    prov = {"representation": "nice", "metric": nice.metric, "nice": nice.model_dump(), "model": model_path,
            "adapters": adapter_digest, "queries": query_digest, "checkpoints": [c.epoch for c in checkpoints],
            "checkpoint_weights": [round(c.weight, 8) for c in checkpoints], "projector": features.projector,
            "proj_dim": features.proj_dim, "sjlt_nnz": features.sjlt_nnz, "proj_seed": features.seed,
            "max_length": model.max_length, "code": code_version(*step_code("nice"))}
    # Always fp16: a query without a direction at some checkpoint stores a zero row there, which sign bits
    # (features.codes=bit) cannot represent; the table holds one row per query, so its size does not matter.
    prov["codes"] = "fp16"
    table = f"nice__{digest(prov)}"
    feature_tables.create_feature_table(lance.connect(store_uri), table, features.proj_dim, prov, codes="fp16")
    return nice_features(store_uri, table, model_path, checkpoints, load_queries(query_spec, nice.metric), samples,
                         rewards, features=features, model=model, nice=nice)
