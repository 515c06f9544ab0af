"""NICE end to end over the store: sample from the warm-up model, score, and write query directions as a
feature table shaped like the gradient tables (same projection, one row per query per checkpoint), so every
selector works on it unchanged."""
from __future__ import annotations

from typing import Any

import numpy as np

from winnow.data.formatting import encode
from winnow.data.loaders import load_records
from winnow.data.records import Record
from winnow.errors import ConfigError
from winnow.features.per_example import lora_modules
from winnow.features.projection import Projector
from winnow.models.loading import load_model, load_tokenizer, set_threads
from winnow.models.lora import load_adapter
from winnow.nice.policy_gradient import policy_gradient_directions
from winnow.evaluation.generation import sample_responses
from winnow.evaluation.rewards import JudgeSettings, Reward, make_reward, needs_label
from winnow.evaluation.sandbox import SandboxLimits
from winnow.settings import FeatureSettings, ModelSettings, NiceSettings
from winnow.store import feature_tables, lance
from winnow.training.checkpoints import Checkpoint


def reward_for(nice: NiceSettings, device: str = "cpu", *, judge_calls: int | None = None,
               judge_api_key: str = "") -> Reward:
    """The reward ``nice.metric`` names; ``judge_calls`` is this task's share of the run's judge cap."""
    return make_reward(nice.metric, limits=SandboxLimits(timeout_s=nice.sandbox_timeout_s,
                                                         memory_mb=nice.sandbox_memory_mb),
                       reward_model=nice.reward_model, device=device,
                       judge=JudgeSettings(nice.judge_url, nice.judge_model, api_key=judge_api_key,
                                           max_calls=judge_calls or nice.judge_max_calls,
                                           timeout_s=nice.judge_timeout_s) if nice.judge_url else None)


def sample(model_path: str, checkpoint: Checkpoint, records: list[Record], nice: NiceSettings,
           model: ModelSettings, progress: bool = True) -> list[list[dict[str, Any]]]:
    """M responses per query from the warmed-up model (the checkpoint's adapter on a clean base)."""
    set_threads(model.num_threads)
    tok = load_tokenizer(model_path, trust_remote_code=model.trust_remote_code)
    net = load_adapter(load_model(model_path, device=model.device, dtype=model.dtype,
                                  trust_remote_code=model.trust_remote_code), checkpoint.adapter_dir)
    return sample_responses(net, tok, records, samples=nice.samples, temperature=nice.temperature, top_p=nice.top_p,
                            top_k=nice.top_k, max_new_tokens=nice.max_new_tokens, seed=nice.seed,
                            max_length=model.max_length, progress=progress)


def load_queries(spec: str, metric: str) -> list[Record]:
    """NICE's query set, the one loader of every NICE step: prompts only are enough when the metric needs no
    label (``needs_label``); a labelled metric keeps the data contract (a query without a response is
    quarantined like any bad record)."""
    return load_records(spec, labelled=needs_label(metric)).records


def score(records: list[Record], samples: list[list[dict[str, Any]]], reward: Reward) -> list[list[float]]:
    if reward.needs_label and not all(r.labelled for r in records):
        missing = sum(not r.labelled for r in records)
        raise ConfigError(f"nice.metric: {reward.name} compares with the gold response, and {missing} of "
                          f"{len(records)} queries have none; give responses, or a label-free metric (code, "
                          "reward-model, judge, or a module:fn taking (prompt, response))")
    return [[reward(rec, y["text"]) for y in ys] for rec, ys in zip(records, samples)]


def as_sample_records(rec: Record, responses: list[str]) -> list[Record]:
    """The query with its gold answer replaced by each sampled response (what log π is taken of)."""
    return [Record(f"{rec.id}#{m}", rec.messages[:-1] + (("assistant", y),), rec.source, rec.task)
            for m, y in enumerate(responses)]


def _reason(per_checkpoint: list[Any]) -> str:
    """Why a query has no direction, or at which checkpoints it has none (those add nothing to its score)."""
    missing = [c for c, d in enumerate(per_checkpoint) if d.vector is None]
    if len(missing) == len(per_checkpoint):
        return per_checkpoint[0].reason
    return f"no direction at checkpoint {', '.join(str(c + 1) for c in missing)}" if missing else ""


def nice_features(store_uri: str, table: str, model_path: str, checkpoints: list[Checkpoint],
                  records: list[Record], samples: list[list[list[dict[str, Any]]]], rewards: list[list[list[float]]], *,
                  features: FeatureSettings, model: ModelSettings, nice: NiceSettings) -> dict[str, Any]:
    """Write each usable query's direction at every checkpoint (a zero row where it has none); return per-query
    reward statistics.

    On-policy, as the reference: ``samples[c]`` / ``rewards[c]`` were drawn from checkpoint ``c`` itself, and
    only feed the policy gradient taken at that checkpoint."""
    if len(samples) != len(checkpoints) or len(rewards) != len(checkpoints):
        raise ValueError(f"NICE needs samples from each of the {len(checkpoints)} checkpoints, got {len(samples)}")
    set_threads(model.num_threads)
    tok = load_tokenizer(model_path, trust_remote_code=model.trust_remote_code)
    projector = Projector(features.projector, features.proj_dim, features.seed, features.sjlt_nnz)
    per_ck = []
    for ck, ck_samples, ck_rewards in zip(checkpoints, samples, rewards):
        enc = [[encode(tok, r, model.max_length, open_ended=y["truncated"])
                for r, y in zip(as_sample_records(rec, [y["text"] for y in ys]), ys)]
               for rec, ys in zip(records, ck_samples)]
        base = load_model(model_path, device=model.device, dtype=model.dtype, trust_remote_code=model.trust_remote_code)
        net = load_adapter(base, ck.adapter_dir, trainable=True).eval()
        per_ck.append(policy_gradient_directions(net, lora_modules(net), projector, enc, ck_rewards,
                                                 pad_id=tok.pad_token_id, baseline=nice.baseline,
                                                 batch_size=features.batch_size or 8))
    # A query is usable when it has a direction at any checkpoint. Where every sample of a checkpoint scored the
    # baseline, the policy-gradient estimate there *is* zero, so that checkpoint adds nothing to the query's
    # score (a zero row) instead of discarding the direction the other checkpoints found: on a target the
    # warm-up model rarely gets right, requiring every checkpoint dropped most of the queries that had any reward.
    usable = [i for i in range(len(records)) if any(d[i].vector is not None for d in per_ck)]
    db = lance.connect(store_uri)
    dim = features.proj_dim
    for c, dirs in enumerate(per_ck):
        if usable:
            feature_tables.write_features(db, table, records=[records[i] for i in usable], row_idx=usable, checkpoint=c,
                                 vectors=np.stack([dirs[i].vector if dirs[i].vector is not None
                                                   else np.zeros(dim, np.float32) for i in usable]),
                                 norms=np.array([dirs[i].norm if dirs[i].vector is not None else 0.0
                                                 for i in usable]), n_tokens=[0] * len(usable))
    return {"queries": [{"id": records[i].id,  # reward statistics averaged over the checkpoints' samples
                         "mean_reward": round(float(np.mean([d[i].mean_reward for d in per_ck])), 4),
                         "nonzero_share": round(float(np.mean([d[i].nonzero_share for d in per_ck])), 4),
                         "truncated_share": round(float(np.mean([y["truncated"] for ck in samples
                                                                 for y in ck[i]] or [0.0])), 4),
                         "stored": i in usable,
                         "reason": _reason([d[i] for d in per_ck])}
                        for i in range(len(records))],
            "usable": len(usable), "table": table,
            "truncated_share": round(float(np.mean([y["truncated"] for ck in samples for ys in ck for y in ys]
                                                   or [0.0])), 4)}
