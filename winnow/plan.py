"""Predict a run's wall time and peak memory per phase before it starts, from a short probe on this hardware.

Why: the cost of a curation spans four orders of magnitude (a 280-example pool: minutes on two CPU cores; 100k
examples: about two days there, minutes on a GPU), and the phases scale differently (the warm-up with the
warm-up slice, features with pool tokens × checkpoints, fine-tunes with the budget). A user should learn that
before the run, with the cheaper alternatives priced the same way, not after.

The probe runs the real code of each phase — model loading, LoRA training steps, per-example gradient features,
the prefilter's forward pass, greedy evaluation, a store write — on a few of the real examples (the longest of a
sample, so peak memory is not underestimated), and measures seconds per token (per item for evaluation) and the
process's peak memory. ``predict`` turns those rates and the run's counts into per-phase wall times, scheduling
the phase's tasks on the workers as the flow submits them (a list schedule: shards and fine-tunes are independent,
an arm's evaluation waits for its fine-tune). Fixed costs are part of it: a model load per task and checkpoint,
a store write per shard, and the orchestrator's overhead per task (measured by the flow with an empty task; the
CLI, which has no flow, assumes ``TASK_OVERHEAD_S``).
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from winnow.budget import resolve_budget
from winnow.data.formatting import encode
from winnow.data.records import Record
from winnow.settings import WinnowSettings

# Prefect's cost of one task run on the Dask runner beyond its function, when it cannot be measured (the CLI's
# plan): platform notes ≈ 0.1 s on Dask; measured 0.1-0.2 s on two quiet cores with results persisted.
TASK_OVERHEAD_S = 0.15
# The run's steps outside the probed code, when a flow has not measured them: reading and ingesting the data
# (1.5 s for the tiny model's files on two quiet cores; LanceDB appends ≈ 0.4 ms a row, platform notes) and, per
# selected subset, reading the ordering's features and writing the subset (0.25 s on the tiny model).
FIXED_S = {"data": 1.5, "data_per_row": 4e-4, "select_per_arm": 0.25}


@dataclass(frozen=True)
class Rates:
    """What the probe measured on this machine (seconds; megabytes of resident memory at the peak)."""

    device: str
    threads: int
    load_s: float              # tokenizer + a clean base model, as every task loads it (warm process)
    first_load_s: float        # the extra cost of a process's first load (the model's classes are imported)
    import_s: float            # a fresh worker's imports before its first task (torch, transformers, the library)
    train_s_per_token: float   # LoRA training, forward + backward + optimizer step (padded tokens)
    grad_s_per_token: float    # per-example gradient features at one checkpoint, projection included
    cheap_s_per_token: float   # the prefilter's forward pass (hidden states), 0 when not probed
    embed_s_per_item: float    # sentence embeddings (prefilter, decontamination), 0 when not probed
    embed_load_s: float        # loading the sentence-embedding model
    eval_s_per_item: float     # greedy answer of eval.max_new_tokens + response loss, per test item
    write_s: float             # one shard's commit to the feature store
    peak_mb: dict[str, float]  # per phase


@contextmanager
def peak_memory(into: dict[str, float], phase: str, device: torch.device) -> Iterator[None]:
    """Peak resident memory of this process (CPU) or peak allocated device memory (CUDA) during the block, MB."""
    import psutil

    proc, peak, stop = psutil.Process(), [0], threading.Event()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            stop.wait(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        used = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else max(peak[0], proc.memory_info().rss)
        into[phase] = round(used / 2**20, 1)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def probe(model_path: str, cfg: WinnowSettings, pool: list[Record], test: list[Record], *, examples: int = 8,
          work_dir: str | Path, train_model_path: str = "", import_s: float = 0.0) -> Rates:
    """Measure each phase's rate on ``examples`` of the longest records of ``pool`` (and a few ``test`` items).
    ``work_dir`` holds the probe's throwaway adapter and store; ``train_model_path`` is the model the fine-tunes
    train and the evaluations score when it is not the selection model (LESS-T)."""
    from winnow.features.gradients import gradient_features
    from winnow.features.hidden_states import hidden_state_features
    from winnow.features.per_example import lora_modules
    from winnow.features.projection import Projector
    from winnow.models.loading import load_model, load_tokenizer, resolve_device, set_threads
    from winnow.models.lora import attach_lora
    from winnow.training.trainer import train_lora

    m = cfg.model
    set_threads(m.num_threads)
    device = resolve_device(m.device)
    peaks: dict[str, float] = {}

    def load() -> tuple[Any, Any]:
        return (load_tokenizer(model_path, trust_remote_code=m.trust_remote_code),
                load_model(model_path, device=m.device, dtype=m.dtype, trust_remote_code=m.trust_remote_code))

    _, first_load_s = _timed(load)  # the first load in a process imports the model's classes too
    (tok, base), load_s = _timed(load)
    enc = sorted((encode(tok, r, m.max_length) for r in pool), key=lambda e: -len(e.input_ids))[:examples]
    tokens = sum(len(e.input_ids) for e in enc)

    train = cfg.finetune.model_copy(update={"epochs": 1})
    t_path = train_model_path or model_path
    t_tok = load_tokenizer(t_path, trust_remote_code=m.trust_remote_code) if train_model_path else tok
    t_enc = sorted((encode(t_tok, r, m.max_length) for r in pool), key=lambda e: -len(e.input_ids))[:examples]
    trained = load_model(t_path, device=m.device, dtype=m.dtype, trust_remote_code=m.trust_remote_code)
    train_lora(load_model(t_path, device=m.device, dtype=m.dtype, trust_remote_code=m.trust_remote_code), t_enc[:1],
               pad_id=t_tok.pad_token_id, train=train, lora=cfg.finetune_lora, out_dir=Path(work_dir) / "probe-warm",
               save_checkpoints=False, progress=False)  # one step first: one-off costs are not a rate
    with peak_memory(peaks, "fine-tune", device):
        _, train_s = _timed(lambda: train_lora(trained, t_enc, pad_id=t_tok.pad_token_id, train=train,
                                               lora=cfg.finetune_lora, out_dir=Path(work_dir) / "probe-train",
                                               save_checkpoints=False, progress=False))
    model = attach_lora(base, cfg.warmup.lora, seed=0)
    modules = lora_modules(model)
    projector = Projector(cfg.features.projector, cfg.features.proj_dim, cfg.features.seed, cfg.features.sjlt_nnz)
    batch = cfg.features.batch_size
    with peak_memory(peaks, "features", device):
        gradient_features(model, enc[:1], modules, projector, pad_id=tok.pad_token_id, batch_size=batch,
                          progress=False, autocast_bf16=cfg.features.autocast_bf16)  # one-off costs (sketch tables)
        _, grad_s = _timed(lambda: gradient_features(model, enc, modules, projector, pad_id=tok.pad_token_id,
                                                     batch_size=batch, progress=False,
                                                     autocast_bf16=cfg.features.autocast_bf16))
    cheap_s = embed_s = embed_load_s = 0.0
    if cfg.selection.prefilter.representation == "hidden":
        plain = load_model(model_path, device=m.device, dtype=m.dtype, trust_remote_code=m.trust_remote_code)
        with peak_memory(peaks, "prefilter", device):
            _, cheap_s = _timed(lambda: hidden_state_features(plain, enc, pad_id=tok.pad_token_id, batch_size=batch,
                                                              progress=False))
    embedder = cfg.selection.decontaminate.embedder if cfg.selection.decontaminate.enabled else ""
    if cfg.selection.prefilter.representation == "embedding" or embedder:
        from winnow.features.embeddings import embed_texts, example_text, sentence_model

        name = embedder or "default"
        _, embed_load_s = _timed(lambda: sentence_model(name, str(device)))
        texts = [example_text(r) for r in pool[:examples]]
        embed_texts(name, texts[:1], device=str(device))
        _, embed_s = _timed(lambda: embed_texts(name, texts, device=str(device)))
        embed_s /= max(1, min(examples, len(pool)))
    from winnow.evaluation.evaluate import evaluate

    items = test[: max(1, min(len(test), cfg.eval.batch_size))]
    trained.eval()
    # Generation is what an evaluation costs; a judge, reward model or sandbox is not called by the probe (no key,
    # no cost), so metrics that generate are probed as exact match. Multiple choice generates nothing: as it is.
    ev = cfg.eval if cfg.eval.metric == "mc_accuracy" else cfg.eval.model_copy(update={"metric": "exact_match"})
    items = [r if r.metric in ("", "mc_accuracy") else replace(r, metric="") for r in items]
    evaluate(trained, t_tok, items[:1], ev, max_length=m.max_length, progress=False, device=str(device))
    with peak_memory(peaks, "evaluate", device):
        _, eval_s = _timed(lambda: evaluate(trained, t_tok, items, ev, max_length=m.max_length, progress=False,
                                            device=str(device)))
    write_s = _probe_store_write(Path(work_dir) / "probe-store", cfg.features.proj_dim, examples)
    return Rates(device=device.type, threads=torch.get_num_threads(), load_s=round(load_s, 3),
                 first_load_s=round(max(0.0, first_load_s - load_s), 3), import_s=round(import_s, 3),
                 train_s_per_token=train_s / max(1, padded_tokens([len(e.input_ids) for e in t_enc], train.batch_size,
                                                                  grouped=train.group_by_length)),
                 grad_s_per_token=grad_s / tokens, cheap_s_per_token=cheap_s / tokens,
                 embed_s_per_item=embed_s, embed_load_s=round(embed_load_s, 3), eval_s_per_item=eval_s / len(items),
                 write_s=round(write_s, 3), peak_mb=peaks)


def _probe_store_write(uri: Path, dim: int, n: int) -> float:
    """One shard's commit (merge by key) of ``n`` fp16 vectors, as a feature shard writes them."""
    from winnow.data.records import parse_record
    from winnow.store import feature_tables, lance

    db = lance.connect(str(uri))
    feature_tables.create_feature_table(db, "probe", dim, {"probe": True}, overwrite=True)
    recs = [parse_record({"prompt": f"p{i}", "response": "r", "source": "s", "id": f"p{i}"}) for i in range(n)]
    vec = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    _, s = _timed(lambda: feature_tables.write_features(db, "probe", records=recs, row_idx=list(range(n)), checkpoint=0,
                                                        vectors=vec, norms=np.ones(n), n_tokens=[1] * n))
    return s


def padded_tokens(lengths: list[int], batch_size: int, *, grouped: bool = True, seed: int = 0) -> int:
    """Tokens a LoRA training epoch processes, padding included: the batches ``train_lora`` draws (grouped by
    length, or random), each padded to its longest example."""
    from winnow.training.trainer import epoch_batches

    return sum(len(b) * max(lengths[i] for i in b)
               for b in epoch_batches(lengths, batch_size, random.Random(seed), grouped=grouped))


@dataclass(frozen=True)
class Workload:
    """The counts a run's cost follows (tokens as encoded, truncation included; from a sample of the pool)."""

    pool_rows: int
    mean_tokens: float          # per pool example
    pad_factor: float           # training tokens with padding / without (random batches)
    query_rows: int
    test_rows: int
    budget: int
    arms: int                   # fine-tunes (selected, random, nice)
    checkpoints: int            # warm-up epochs that leave a checkpoint
    warmup_rows: int
    shard_size: int
    workers: int
    candidates: int = 0         # a prefilter cascade's (0 = every row gets gradients)
    prefilter: str = "none"
    cold: bool = True           # workers start fresh: their one-off start-up is on the features phase's path
    data_s: float | None = None  # the data phase, when the flow has already run it
    task_overhead_s: float = TASK_OVERHEAD_S  # the orchestrator's cost per task, when the flow has measured it


def workload(cfg: WinnowSettings, lengths: list[int], *, pool_rows: int, query_rows: int, test_rows: int,
             arms: int, workers: int, cold: bool = True, data_s: float | None = None,
             task_overhead_s: float = TASK_OVERHEAD_S) -> Workload:
    """A run's counts from its settings and a sample of encoded pool lengths."""
    from winnow.selection.cascade import candidate_count
    from winnow.training.runs import warmup_sample

    k = resolve_budget(cfg.selection.budget, pool_rows)
    pre = cfg.selection.prefilter
    cand = sum(candidate_count(k, pool_rows, pre.factor, pre.tail)) if pre.representation != "none" else 0
    return Workload(pool_rows=pool_rows, mean_tokens=float(np.mean(lengths)),
                    pad_factor=padded_tokens(lengths, cfg.finetune.batch_size, grouped=cfg.finetune.group_by_length)
                    / max(1, sum(lengths)),
                    query_rows=query_rows, test_rows=test_rows, budget=k, arms=arms,
                    checkpoints=cfg.warmup.train.epochs, warmup_rows=len(warmup_sample(pool_rows, cfg.warmup)),
                    shard_size=cfg.features.shard_size, workers=workers, candidates=cand,
                    prefilter=pre.representation, cold=cold, data_s=data_s, task_overhead_s=task_overhead_s)


def schedule(durations: list[float], workers: int, after: list[int | None] | None = None) -> float:
    """Makespan of tasks started in list order on ``workers`` (a task with ``after[i]`` waits for that task)."""
    free = [0.0] * max(1, workers)
    done: list[float] = []
    for i, d in enumerate(durations):
        ready = done[after[i]] if after and after[i] is not None else 0.0
        w = min(range(len(free)), key=lambda j: max(free[j], ready))
        start = max(free[w], ready)
        free[w] = start + d
        done.append(free[w])
    return max(done, default=0.0)


def predict(w: Workload, r: Rates, cfg: WinnowSettings) -> dict[str, dict[str, Any]]:
    """Per phase: predicted wall seconds, peak memory (MB) and what it does."""
    C, T, o = w.checkpoints, w.mean_tokens, w.task_overhead_s
    warm_tokens = w.warmup_rows * T * w.pad_factor * cfg.warmup.train.epochs
    # The warm-up runs in the flow's own process, whose imports are done (the flow imported the library).
    warmup = r.load_s + r.train_s_per_token * warm_tokens + o * 3
    feature_rows = w.candidates if w.candidates else w.pool_rows

    def shards(rows: int, per_token: float, checkpoints: int) -> list[float]:
        sizes = [min(w.shard_size, rows - s) for s in range(0, rows, w.shard_size)]
        return [o + checkpoints * (r.load_s + r.write_s + per_token * n * T) for n in sizes]

    tasks = shards(feature_rows, r.grad_s_per_token, C) + shards(w.query_rows, r.grad_s_per_token, C)
    cheap: list[float] = []
    if w.prefilter == "hidden":
        cheap = shards(w.pool_rows, r.cheap_s_per_token, 1) + shards(w.query_rows, r.cheap_s_per_token, 1)
    elif w.prefilter == "embedding":
        cheap = [t - r.load_s + r.embed_load_s for t in shards(w.pool_rows, r.embed_s_per_item / T, 1)]
    features = (schedule(cheap, w.workers) + schedule(tasks, w.workers) + o * 4
                + (r.import_s + r.first_load_s if w.cold else 0.0))  # a fresh worker's start-up, once (in parallel)
    guard = r.embed_load_s + r.embed_s_per_item * (w.test_rows + w.budget * w.arms) if r.embed_s_per_item else 0.0
    select = w.arms * (FIXED_S["select_per_arm"] + o) + guard
    ft = (r.load_s + r.train_s_per_token * w.budget * T * w.pad_factor * cfg.finetune.epochs + o)
    ev = r.load_s + r.eval_s_per_item * w.test_rows + o
    jobs = [ft] * w.arms + [ev] * (w.arms + 1)
    after = [None] * w.arms + [None] + list(range(w.arms))  # base first, then each arm after its fine-tune
    train_eval = schedule(jobs, w.workers, after)
    data = w.data_s if w.data_s is not None else FIXED_S["data"] + FIXED_S["data_per_row"] * (w.pool_rows + w.query_rows)
    rows = {
        "data": {"seconds": data, "what": f"{w.pool_rows} pool rows, {w.query_rows} queries" +
                 (" (measured: it ran before the prediction)" if w.data_s is not None else "")},
        "warmup": {"seconds": warmup, "peak_mb": r.peak_mb.get("fine-tune"),
                   "what": f"{w.warmup_rows} examples x {cfg.warmup.train.epochs} epochs"},
        "features": {"seconds": features + warmup, "peak_mb": r.peak_mb.get("features"),
                     "what": f"{feature_rows} pool rows x {C} checkpoints" + (
                         f" (cascade: {w.prefilter} over {w.pool_rows} first)" if w.candidates else "")},
        "select": {"seconds": select, "what": f"{w.arms} subsets of {w.budget}"},
        "train_evaluate": {"seconds": train_eval, "peak_mb": max(r.peak_mb.get("fine-tune", 0),
                                                                 r.peak_mb.get("evaluate", 0)),
                           "what": f"{w.arms} fine-tunes x {cfg.finetune.epochs} epochs, {w.arms + 1} evaluations of "
                                   f"{w.test_rows} items"},
    }
    for v in rows.values():
        v["seconds"] = round(v["seconds"], 1)
    return rows


def total(pred: dict[str, dict[str, Any]]) -> float:
    """Predicted wall time of the whole run (the warm-up is counted inside features)."""
    return round(sum(v["seconds"] for k, v in pred.items() if k != "warmup"), 1)


def alternatives(w: Workload, r: Rates, cfg: WinnowSettings, lengths: list[int]) -> list[dict[str, Any]]:
    """The same run priced with each cheaper option a user can set: fewer checkpoints, a prefilter cascade, a
    shorter max_length (the 90th percentile of the pool's lengths), twice the workers."""
    base = total(predict(w, r, cfg))
    out = [{"option": "as configured", "set": "", "seconds": base}]
    if w.checkpoints > 1:
        fewer = cfg.model_copy(update={"warmup": cfg.warmup.model_copy(update={
            "train": cfg.warmup.train.model_copy(update={"epochs": w.checkpoints - 1})})})
        out.append({"option": f"{w.checkpoints - 1} warm-up checkpoints",
                    "set": f"warmup.train.epochs={w.checkpoints - 1}",
                    "seconds": total(predict(replace(w, checkpoints=w.checkpoints - 1), r, fewer))})
    if not w.candidates:
        from winnow.selection.cascade import candidate_count

        pre = cfg.selection.prefilter
        cand = sum(candidate_count(w.budget, w.pool_rows, pre.factor, pre.tail))
        if cand < w.pool_rows:
            probe_cheap = r.cheap_s_per_token or r.grad_s_per_token / 3  # forward only ≈ a third of forward+backward
            out.append({"option": f"prefilter cascade (hidden, factor {pre.factor:g})",
                        "set": "selection.prefilter.representation=hidden",
                        "seconds": total(predict(replace(w, candidates=cand, prefilter="hidden"),
                                                 replace(r, cheap_s_per_token=probe_cheap), cfg))})
    p90 = int(np.percentile(lengths, 90)) if lengths else cfg.model.max_length
    if p90 < cfg.model.max_length * 0.9 and max(lengths, default=0) > p90:
        cut = [min(x, p90) for x in lengths]
        out.append({"option": f"max_length {p90} (90th percentile; longer examples truncated)",
                    "set": f"model.max_length={p90}",
                    "seconds": total(predict(replace(w, mean_tokens=float(np.mean(cut)),
                                                     pad_factor=padded_tokens(
                                                         cut, cfg.finetune.batch_size,
                                                         grouped=cfg.finetune.group_by_length) / max(1, sum(cut))),
                                             r, cfg))})
    out.append({"option": f"{2 * w.workers} workers", "set": f"WINNOW_DASK_WORKERS={2 * w.workers}",
                "seconds": total(predict(replace(w, workers=2 * w.workers), r, cfg))})
    for o in out:
        o["vs configured"] = f"{o['seconds'] / base:.2f}x" if base else "–"
    return out


def sample_lengths(tokenizer: Any, records: list[Record], max_length: int, n: int = 1000, seed: int = 0) -> list[int]:
    """Encoded lengths (truncation included) of a seeded sample of at most ``n`` records."""
    picked = records if len(records) <= n else random.Random(seed).sample(records, n)
    return [len(encode(tokenizer, rec, max_length).input_ids) for rec in picked]


def plan(rates: Rates, lengths: list[int], cfg: WinnowSettings, *, pool_rows: int, query_rows: int, test_rows: int,
         arms: int, workers: int, cold: bool = True, data_s: float | None = None,
         task_overhead_s: float = TASK_OVERHEAD_S) -> dict[str, Any]:
    """The whole plan of a run from the probe's ``rates`` and a sample of the pool's encoded ``lengths``: the
    run's counts, per-phase predictions, the total and the alternatives. ``cold``: whether the run's workers
    start fresh (a run whose only worker ran the probe does not); ``data_s`` and ``task_overhead_s``: what the
    flow measured before predicting."""
    from dataclasses import asdict

    w = workload(cfg, lengths, pool_rows=pool_rows, query_rows=query_rows, test_rows=test_rows, arms=arms,
                 workers=workers, cold=cold, data_s=data_s, task_overhead_s=task_overhead_s)
    phases = predict(w, rates, cfg)
    return {"rates": asdict(rates), "workload": asdict(w), "phases": phases, "total": total(phases),
            "alternatives": alternatives(w, rates, cfg, lengths)}


def human(seconds: float) -> str:
    """3.2 s, 4.5 min, 2.1 h."""
    if seconds < 90:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
