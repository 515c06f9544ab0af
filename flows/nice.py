"""The NICE branch of curation: query directions from the policy gradient of the target metric."""
from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from tasks.nice import nice_features_task, nice_reward_task, nice_sample_task
from winnow.data.loaders import load_records
from winnow.hashing import file_digest
from winnow.settings import WinnowSettings
from winnow.training.checkpoints import read_checkpoints

CHUNK = 4  # queries per sampling task: small enough to spread over the workers


def run_nice(cfg: WinnowSettings, query: str, model_path: str, warmup_dir: str, worker_model: Any,
             store_uri: str) -> dict[str, Any]:
    """Sample (from the last warm-up checkpoint) and score per chunk on Dask; write the NICE query table."""
    logger = get_run_logger()
    checkpoints = read_checkpoints(warmup_dir)
    adapter_digest = file_digest(*[c.adapter_dir / "adapter_model.safetensors" for c in checkpoints])
    query_digest = file_digest(query)
    n = len(load_records(query).records)
    chunks = [(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    sampled = [nice_sample_task.submit(model_path, checkpoints[-1], adapter_digest, query, query_digest, cfg.nice,
                                       worker_model, s, e) for s, e in chunks]
    scored = [nice_reward_task.submit(query, query_digest, fut, cfg.nice, s, e) for fut, (s, e) in zip(sampled, chunks)]
    samples = [ys for fut in sampled for ys in fut.result()]
    rewards = [rs for fut in scored for rs in fut.result()]
    info = nice_features_task.submit(store_uri, model_path, checkpoints, adapter_digest, query, query_digest,
                                     samples, rewards, cfg.features, worker_model, cfg.nice).result()
    dropped = [q for q in info["queries"] if not q["stored"]]
    logger.info("NICE (%s): %d of %d queries have a direction; %d reported without one", cfg.nice.metric,
                info["usable"], n, len(dropped))
    if not info["usable"]:
        raise ValueError(f"NICE: no query has a usable direction under metric {cfg.nice.metric!r} "
                         f"(first reason: {dropped[0]['reason']}); try nice.baseline=mean or more samples")
    return info
