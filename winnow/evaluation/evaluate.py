"""Evaluate a model (base or with an adapter) on a test set with the target's metric, and response loss beside it.

The metric is a plug-in chosen per target (``eval.metric``):
- generation metrics score the greedy response with a reward of ``winnow.evaluation.rewards`` (exact match,
  numeric match, token F1, code, reward model, judge, a user's ``module:function``);
- ``pass@k`` samples ``eval.samples`` responses per problem, runs each with the problem's ``tests`` in the
  sandbox and reports the unbiased pass@k;
- ``mc_accuracy`` picks the choice (of the record's ``choices``) with the highest summed log-likelihood as the
  response, as lm-evaluation-harness's ``acc`` does for MMLU / BBH, with no generation at all.
Response loss (mean NLL of the gold response) is always measured: it needs no metric and moves first.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from winnow.data.formatting import collate, encode, per_example_loss
from winnow.data.records import Record
from winnow.errors import ConfigError
from winnow.results import Evaluation
from winnow.evaluation.generation import generate, sample_responses
from winnow.evaluation.metrics import pass_at_k
from winnow.evaluation.rewards import JudgeSettings, Reward, make_reward
from winnow.evaluation.sandbox import SandboxLimits
from winnow.settings import EvalSettings, ModelSettings

_PASS_AT = re.compile(r"^pass@(\d+)$")


@torch.no_grad()
def response_losses(model: Any, tokenizer: Any, records: list[Record], *, batch_size: int, max_length: int,
                    open_ended: bool = False, summed: bool = False) -> np.ndarray:
    """Per record (in input order), the mean (or, ``summed``, the total) NLL of its response tokens given its
    prompt."""
    device = next(model.parameters()).device
    enc = [encode(tokenizer, r, max_length, open_ended=open_ended) for r in records]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i].input_ids))  # batched by length: little padding
    losses = np.zeros(len(enc))
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        batch = {k: v.to(device) for k, v in collate([enc[i] for i in idx], tokenizer.pad_token_id).items()}
        loss = per_example_loss(model, batch).float().cpu().numpy()
        if summed:
            loss = loss * np.array([enc[i].n_response_tokens for i in idx])
        losses[idx] = loss
    return losses


def multiple_choice(model: Any, tokenizer: Any, records: list[Record], *, batch_size: int,
                    max_length: int) -> list[int]:
    """Index of the most likely choice of each record: the continuation with the highest summed log-likelihood,
    scored open-ended (no end-of-turn token), as lm-evaluation-harness scores a multiple-choice task."""
    flat = []
    for r in records:
        if not r.choices:
            raise ConfigError(f"eval.metric=mc_accuracy: test record {r.id!r} has no 'choices'")
        flat += [Record(f"{r.id}#{i}", (*r.messages[:-1], ("assistant", c)), r.source, r.task)
                 for i, c in enumerate(r.choices)]
    nll = response_losses(model, tokenizer, flat, batch_size=batch_size, max_length=max_length, open_ended=True,
                          summed=True)
    out, at = [], 0
    for r in records:
        out.append(int(np.argmin(nll[at:at + len(r.choices)])))  # ties: the first choice
        at += len(r.choices)
    return out


def metric_reward(settings: EvalSettings, *, judge_api_key: str = "", device: str = "cpu") -> Reward | None:
    """The reward that scores one response under ``eval.metric`` (None for mc_accuracy, which reads no response)."""
    if settings.metric == "mc_accuracy":
        return None
    limits = SandboxLimits(timeout_s=settings.sandbox_timeout_s)
    name = "code" if _PASS_AT.match(settings.metric) else settings.metric
    judge = JudgeSettings(settings.judge_url, settings.judge_model, api_key=judge_api_key,
                          max_calls=settings.judge_max_calls) if settings.judge_url else None
    try:
        return make_reward(name, limits=limits, reward_model=settings.reward_model, judge=judge, device=device)
    except ConfigError as e:
        raise ConfigError(str(e).replace("nice.", "eval.", 1)) from None


def evaluate(model: Any, tokenizer: Any, records: list[Record], settings: EvalSettings, *, max_length: int,
             reward: Reward | None = None, progress: bool = True, judge_api_key: str = "",
             device: str = "cpu") -> Evaluation:
    """``settings.metric`` of the model's answers against each record (mean and per example), and mean response NLL.

    A record may name its own ``metric`` (a suite that mixes multiple-choice and generated answers, as BBH or
    MMLU-with-free-text do): each metric's records are scored together with that metric, and the score is the
    mean over all records; ``by_metric`` holds each metric's own count and mean."""
    model.eval()
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r.metric or settings.metric, []).append(i)
    preds: list[str] = [""] * len(records)
    scores: list[float] = [0.0] * len(records)
    extra: list[dict[str, Any]] = [{} for _ in records]
    counters: dict[str, int] = {}
    by_metric = {}
    for metric, idx in groups.items():
        own = settings if metric == settings.metric else settings.model_copy(update={"metric": metric})
        rew = reward if reward is not None and metric == settings.metric else metric_reward(
            own, judge_api_key=judge_api_key, device=device)
        p, s, x = _score(model, tokenizer, [records[i] for i in idx], own, rew, max_length, progress)
        for j, i in enumerate(idx):
            preds[i], scores[i], extra[i] = p[j], s[j], {**x[j], **({"metric": metric} if len(groups) > 1 else {})}
        for k, v in (rew.counters if rew is not None else {}).items():  # two metrics' judges add up
            counters[k] = counters.get(k, 0) + v
        by_metric[metric] = {"n": len(idx), "score": float(np.mean(s))}
    losses = response_losses(model, tokenizer, records, batch_size=settings.batch_size, max_length=max_length)
    return Evaluation(
        metric=" + ".join(groups) if groups else settings.metric, n=len(records),
        score=float(np.mean(scores)) if scores else float("nan"),
        response_loss=float(losses.mean()) if len(losses) else float("nan"),
        counters=counters, by_metric=by_metric if len(groups) > 1 else {},
        predictions=tuple({"id": r.id, "prediction": p, "gold": r.response, "score": float(s), "loss": float(l), **x}
                          for r, p, s, l, x in zip(records, preds, scores, losses, extra)))


def _score(model: Any, tokenizer: Any, records: list[Record], settings: EvalSettings, reward: Reward | None,
           max_length: int, progress: bool) -> tuple[list[str], list[float], list[dict[str, Any]]]:
    """Predictions, scores and per-record extras of records that share one metric (``settings.metric``)."""
    metric = settings.metric
    extra: list[dict[str, Any]] = [{} for _ in records]
    if metric == "mc_accuracy":
        picks = multiple_choice(model, tokenizer, records, batch_size=settings.batch_size, max_length=max_length)
        preds = [r.choices[i] for r, i in zip(records, picks)]
        scores = [float(r.choices[i] == r.response) for r, i in zip(records, picks)]
    elif m := _PASS_AT.match(metric):
        k = int(m.group(1))
        samples = sample_responses(model, tokenizer, records, samples=settings.samples, temperature=settings.temperature,
                                   top_p=settings.top_p, top_k=0, max_new_tokens=settings.max_new_tokens,
                                   seed=settings.seed, max_length=max_length, stream="eval-sample", progress=progress)
        preds, scores = [], []
        for i, (rec, got) in enumerate(zip(records, samples)):
            passed = sum(reward(rec, s["text"]) > 0.5 for s in got)
            preds.append(got[0]["text"])
            scores.append(pass_at_k(len(got), passed, k))
            extra[i] = {"passed": passed, "samples": len(got)}
    else:
        preds = generate(model, tokenizer, records, max_new_tokens=settings.max_new_tokens,
                         batch_size=settings.batch_size, max_length=max_length, progress=progress)
        scores = [reward(r, p) for p, r in zip(preds, records)]
    return preds, [float(s) for s in scores], extra


def evaluate_adapter(model_path: str, adapter_dir: str | None, test_spec: str, *, model: ModelSettings,
                     settings: EvalSettings, judge_api_key: str = "", progress: bool = True) -> Evaluation:
    """Evaluate the base model (``adapter_dir=None``) or a fresh base plus a saved adapter."""
    from winnow.data.loaders import load_records
    from winnow.models.loading import load_model, load_tokenizer, resolve_device, set_threads
    from winnow.models.lora import load_adapter

    set_threads(model.num_threads)
    tok = load_tokenizer(model_path, trust_remote_code=model.trust_remote_code)
    net = load_model(model_path, device=model.device, dtype=model.dtype, trust_remote_code=model.trust_remote_code)
    if adapter_dir is not None:
        net = load_adapter(net, adapter_dir)
    records = load_records(test_spec).records
    device = str(resolve_device(model.device))
    reward = metric_reward(settings, judge_api_key=judge_api_key, device=device)
    return evaluate(net, tok, records, settings, max_length=model.max_length, reward=reward, progress=progress,
                    judge_api_key=judge_api_key, device=device)
