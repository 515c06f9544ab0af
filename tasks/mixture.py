"""Mixture tasks: domain split, proxy affinities, TaskPGM, and building a trial's subset (no arrays returned
beyond K × K affinities and K proportions)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import task

from tasks import step_task
from winnow.data.loaders import load_records, write_jsonl
from winnow.hashing import file_digest, text_digest
from winnow.mixture.affinity import js_affinity, llr_affinity, loglik_row, next_token_distributions
from winnow.mixture.build import build_mixture, split_domains
from winnow.mixture.influence import influence_by_id
from winnow.mixture.taskpgm import ClusteredTaskPGM, TaskPGM
from winnow.fingerprint import ModelRef
from winnow.models.loading import load_model, load_tokenizer, set_threads
from winnow.results import Domains, Subset
from winnow.models.lora import load_adapter
from winnow.settings import DecontaminationSettings, ModelSettings
from winnow.store import lance, record_tables


@task(name="split-domains")
def split_domains_task(store_uri: str, pool_table: str, version: int, key: str, holdout: float, seed: int,
                       out_dir: str) -> Domains:
    """Per-domain train / held-out JSONL files (paths and sizes travel, not records)."""
    recs = record_tables.read_records(lance.connect(store_uri), pool_table, version=version)
    out = Path(out_dir)
    names, train_files, held_files, sizes, digests = [], {}, {}, {}, {}
    for name, (train, held) in split_domains(recs, key, holdout, seed).items():
        safe = "".join(c if c.isalnum() else "_" for c in name)
        write_jsonl(out / f"{safe}.train.jsonl", [r.to_json() for r in train])
        names.append(name)
        train_files[name] = str(out / f"{safe}.train.jsonl")
        sizes[name] = len(train)
        digests[name] = file_digest(out / f"{safe}.train.jsonl")
        if held:
            write_jsonl(out / f"{safe}.heldout.jsonl", [r.to_json() for r in held])
            held_files[name] = str(out / f"{safe}.heldout.jsonl")
    return Domains(tuple(names), train_files, held_files, sizes, digests)


def _proxy(model_path: str, adapter_dir: str, model: ModelSettings) -> tuple[Any, Any]:
    """A domain's proxy: its short LoRA on a clean base."""
    set_threads(model.num_threads)
    tok = load_tokenizer(model_path, trust_remote_code=model.trust_remote_code)
    net = load_adapter(load_model(model_path, device=model.device, dtype=model.dtype,
                                  trust_remote_code=model.trust_remote_code), adapter_dir)
    return tok, net


@step_task("affinity", name="proxy-loglik-row", where=("heldout",))
def loglik_row_task(base: ModelRef, adapter_dir: str, heldout: list[str], heldout_digest: str,
                    model: ModelSettings) -> list[float]:
    """A proxy's mean log-likelihood of every domain's held-out responses: one row of the LLR affinity."""
    tok, net = _proxy(base.path, adapter_dir, model)
    return loglik_row(net, tok, [load_records(p).records for p in heldout], max_length=model.max_length,
                      batch_size=8).tolist()


@step_task("affinity", name="proxy-distributions", where=("probe",))
def distributions_task(base: ModelRef, adapter_dir: str, probe: list[str], probe_digest: str, model: ModelSettings,
                       out_path: str) -> str:
    """A proxy's next-token distributions on a shared probe (for the Jensen-Shannon affinity), saved to a file."""
    tok, net = _proxy(base.path, adapter_dir, model)
    recs = [r for p in probe for r in load_records(p).records[:2]]  # a shared probe: two held-out examples a domain
    np.save(out_path, next_token_distributions(net, tok, recs, max_length=model.max_length).astype(np.float16))
    return out_path


@task(name="taskpgm")
def taskpgm_task(kind: str, rows: list[list[float]] | None, dist_paths: list[str] | None, beta: float, lam: float,
                 ridge: float, clusters: int = 0) -> dict[str, Any]:
    if kind == "llr":
        S = llr_affinity(np.array(rows))
    else:
        S = js_affinity([np.load(p).astype(np.float32) for p in dist_paths or []])
    est = (ClusteredTaskPGM(clusters, beta, lam, ridge) if clusters else TaskPGM(beta, lam, ridge)).fit(S)
    return {"affinity": S.tolist(), "proportions": est.proportions_.tolist()}


@task(name="influence-scores")
def influence_task(store_uri: str, pool_features: str, heldout_features: str, weights: list[float], key: str,
                   out_path: str) -> str:
    """Score every pool example by the cosine of its gradient with its domain's mean held-out gradient
    (streamed: winnow.mixture.influence); writes {id: score} (JSON) and returns the path."""
    import json

    scores = influence_by_id(lance.connect(store_uri), pool_features, heldout_features, weights, key)  # type: ignore[arg-type]
    Path(out_path).write_text(json.dumps(scores))
    return out_path


@task(name="decontaminate-domains")
def decontaminate_domains_task(domains: Domains, target_specs: list[str], out_dir: str,
                               settings: DecontaminationSettings) -> Domains:
    """Each domain's trainable part without copies of the target's items (validation and test): the mixture
    search never trains on them, in a proxy or a trial. Returns the domains with the cleaned files, and a
    decontamination summary per domain (paths and counts travel, not records)."""
    from tasks.selection import guard_for
    from winnow.selection.decontaminate import guarded_prefix

    from dataclasses import replace

    guard = guard_for(target_specs, settings)
    out, train, sizes, digests, summary = Path(out_dir), {}, {}, {}, {}
    for name, path in domains.train.items():
        recs = load_records(path).records
        idx, kept, found = guarded_prefix(np.arange(len(recs)), len(recs), lambda i: [recs[j] for j in i], guard)
        clean = out / Path(path).name
        write_jsonl(clean, [r.to_json() for r in kept])
        train[name], sizes[name], digests[name] = str(clean), len(kept), file_digest(clean)
        summary[name] = found
    return replace(domains, train=train, sizes=sizes, digests=digests, decontamination=summary)


@task(name="build-mixture")
def build_mixture_task(train: dict[str, str], proportions: list[float], budget: int, seed: int,
                       out_path: str, scores_path: str | None = None, greedy: bool = False,
                       drop_share: float = 0.2) -> Subset:
    """The trial's subset: random inside each domain, or by influence when ``scores_path`` is given (DUET's
    filter-then-sample, or ``greedy``)."""
    import json

    domains = {name: load_records(path).records for name, path in train.items()}
    scores = None
    if scores_path:
        by_id = json.loads(Path(scores_path).read_text())
        scores = {name: np.array([by_id[r.id] for r in recs]) for name, recs in domains.items()}
    mix = build_mixture(domains, proportions, budget, seed=seed, scores=scores, greedy=greedy, drop_share=drop_share)
    write_jsonl(out_path, [r.to_json() for r in mix])
    counts = {name: sum(r.source == name or r.task == name for r in mix) for name in domains}
    return Subset(name=Path(out_path).stem, selector="mixture", path=out_path, digest=text_digest([r.id for r in mix]),
                  size=len(mix), pool_size=sum(len(v) for v in domains.values()), sources=counts,
                  pool_sources={name: len(v) for name, v in domains.items()})
