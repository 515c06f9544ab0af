"""The NICE branch of curation: query directions from the policy gradient of the target metric."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import get_run_logger

from tasks.nice import nice_features_task, nice_queries_task, nice_reward_task, nice_sample_task
from winnow.errors import ConfigError
from winnow.evaluation.rewards import split_calls
from winnow.hashing import file_digest
from winnow.training.checkpoints import read_checkpoints

if TYPE_CHECKING:
    from flows.run import Run

CHUNK = 4  # queries per sampling task: small enough to spread over the workers


def run_nice(run: Run, query: str, warmup_dir: str) -> dict[str, Any]:
    """Sample from every warm-up checkpoint and score, per chunk on Dask; write the NICE query table. Returns the
    per-query reward table (and the table's name under ``table``)."""
    logger = get_run_logger()
    cfg, base, worker_model = run.cfg, run.base, run.worker_model
    checkpoints = read_checkpoints(warmup_dir)
    adapter_digest = file_digest(*[c.adapter_dir / "adapter_model.safetensors" for c in checkpoints])
    query_digest = file_digest(query)
    n = nice_queries_task(query, cfg.nice.metric)
    chunks = [(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    # On-policy: each checkpoint's policy gradient uses samples drawn from that checkpoint (as the reference).
    sampled = {(c.index, s): nice_sample_task.submit(base, c, adapter_digest, query, query_digest, cfg.nice,
                                                     worker_model, s, e) for c in checkpoints for s, e in chunks}
    judge_calls = split_calls(cfg.nice.judge_max_calls, len(sampled)) if cfg.nice.metric == "judge" else None
    scored = {k: nice_reward_task.submit(query, query_digest, fut, cfg.nice, k[1], min(k[1] + CHUNK, n), judge_calls)
              for k, fut in sampled.items()}
    samples = [[ys for s, _ in chunks for ys in sampled[(c.index, s)].result()] for c in checkpoints]
    rewards = [[rs for s, _ in chunks for rs in scored[(c.index, s)].result()["rewards"]] for c in checkpoints]
    counters: dict[str, int] = {}
    for fut in scored.values():
        for name, count in fut.result()["counters"].items():
            counters[name] = counters.get(name, 0) + count
    info = nice_features_task.submit(run.store_uri, base, checkpoints, adapter_digest, query, query_digest,
                                     samples, rewards, cfg.features, worker_model, cfg.nice).result()
    info["reward_counters"] = counters  # the judge's calls, timeouts and refusals over the whole run
    dropped = [q for q in info["queries"] if not q["stored"]]
    logger.info("NICE (%s): %d of %d queries have a direction; %d reported without one", cfg.nice.metric,
                info["usable"], n, len(dropped))
    if not info["usable"]:
        flat = [r for ck in rewards for rs in ck for r in rs]
        mean = sum(flat) / len(flat) if flat else 0.0
        nonzero = sum(r != 0 for r in flat) / len(flat) if flat else 0.0
        raise ConfigError(f"nice.metric: no query has a usable direction under {cfg.nice.metric!r}: {len(flat)} samples "
                          f"({cfg.nice.samples} per query, up to {cfg.nice.max_new_tokens} new tokens), mean reward "
                          f"{mean:.3f}, {nonzero:.0%} non-zero (first reason: {dropped[0]['reason']}). More samples "
                          "(nice.samples), longer ones (nice.max_new_tokens) or a softer reward would help; "
                          "nice.baseline=mean helps only when rewards vary")
    return info
