"""The mixture steps: domains and TaskPGM's proportions once per pool, then DUET's trials on the task runner.

A trial builds its mixture, fine-tunes a fresh adapter on a clean base and scores it on the validation split
(or waits for a person's score), each as a task submitted to the flow's runner: on Dask's workers, like every
other fine-tune, never in the flow process.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.run import Run
from flows.steps import evaluate, featurise, finetune
from tasks.data import data_task
from tasks.mixture import (build_mixture_task, decontaminate_domains_task, distributions_task, influence_task,
                           loglik_row_task, split_domains_task, taskpgm_task)
from winnow.hashing import file_digest, text_digest
from winnow.mixture.duet import Duet
from winnow.reports.plots import plot_affinity
from winnow.reports.publish import ui_key
from winnow.results import DataSet, Domains, Evaluation, Subset


@dataclass(frozen=True)
class Prepared:
    """What every mixture over one pool needs: the domains, TaskPGM's affinity and proportions, and (for
    ``mixture.within`` influence or greedy) each example's influence score."""

    domains: Domains
    pgm: dict[str, Any]
    scores_path: str | None


def prepare(run: Run, pool: DataSet, study_dir: Path, held_out: list[str], plots_dir: Path) -> Prepared:
    """The domains (trainable and held-out parts, less copies of the ``held_out`` splits' items), one short
    LoRA proxy per domain in parallel on the workers, their affinity, and TaskPGM's proportions."""
    m = run.cfg.mixture
    domains = split_domains_task(run.store_uri, pool.table, pool.version, m.domain_key, m.holdout, m.seed,
                                 str(study_dir / "domains"))
    domains = decontaminate_domains_task(domains, held_out, str(study_dir / "clean"), run.cfg.selection.decontaminate)
    names = domains.names
    proxies = {d: finetune(run, _subset(domains, d), m.proxy) for d in names}
    held = [domains.heldout.get(d, domains.train[d]) for d in names]
    held_digest = text_digest([file_digest(p) for p in held])
    base, model = run.base, run.worker_model
    if m.affinity == "llr":
        rows = [loglik_row_task.submit(base, proxies[d], held, held_digest, model) for d in names]
        pgm = taskpgm_task(m.affinity, [r.result() for r in rows], None, m.beta, m.lam, m.ridge, m.clusters)
    else:
        dists = [distributions_task.submit(base, proxies[d], held, held_digest, model, str(plots_dir / f"proxy-{i}.npy"))
                 for i, d in enumerate(names)]
        pgm = taskpgm_task(m.affinity, None, [f.result() for f in dists], m.beta, m.lam, m.ridge, m.clusters)
    plot_affinity(pgm["affinity"], list(names), plots_dir / "affinity.png")
    scores_path = None
    if m.within in ("influence", "greedy"):  # the pool's gradients (Adam) against each domain's held-out ones (plain)
        held_file = study_dir / "heldout.jsonl"
        held_file.write_text("".join(Path(p).read_text() for p in domains.heldout.values()))
        grads = featurise(run, {"pool": pool, "query": data_task(str(held_file), run.store_uri, "heldout")},
                          ["gradients"]).tables["gradients"]
        scores_path = influence_task(run.store_uri, grads.pool, grads.query, list(grads.weights or ()), m.domain_key,
                                     str(study_dir / "influence.json"))
    return Prepared(domains, pgm, scores_path)


def _subset(domains: Domains, name: str) -> Subset:
    return Subset(name=name, selector="domain", path=domains.train[name], digest=domains.digests[name],
                  size=domains.sizes[name], pool_size=domains.sizes[name], sources={name: domains.sizes[name]},
                  pool_sources={})


def build(run: Run, prep: Prepared, proportions: list[float], budget: int, path: Path) -> Subset:
    m = run.cfg.mixture
    return build_mixture_task.submit(prep.domains.train, proportions, budget, m.seed, str(path), prep.scores_path,
                                     greedy=m.within == "greedy", drop_share=m.drop_share).result()


def trial(run: Run, prep: Prepared, study: str, storage: str, number: int, label: str, proportions: list[float],
          budget: int, val: str, feedback: str) -> float:
    """One round of DUET: the mixture, a fresh adapter on it, and its validation score (or a person's)."""
    sub = build(run, prep, proportions, budget, Path(run.work_dir) / "mixture" / study / f"trial-{number}" / "subset.jsonl")
    adapter = finetune(run, sub)
    if feedback == "external":
        create_markdown_artifact(key=ui_key(f"{study}-trial-{number}", "waiting"), markdown=(
            f"# Trial {number} ({label}) waits for a score\n\nAdapter: `{adapter.result()}`\n\nMixture: {sub.sources}"
            f"\n\nPost the score with `winnow feedback --study {study} --trial {number} --score X`."))
        get_run_logger().info("trial %d: adapter %s published; waiting for `winnow feedback --study %s --trial %d`",
                              number, adapter.result(), study, number)
        return Duet(study, storage, list(prep.domains.names)).wait(number, run.cfg.mixture.feedback_timeout_s)
    e: Evaluation = evaluate(run, adapter, val).result()
    return e.score if run.cfg.mixture.score == "metric" else -e.response_loss


def on_test(run: Run, prep: Prepared, study: str, name: str, proportions: list[float], budget: int, test: str,
            test_digest: str) -> Evaluation:
    """One fixed mixture, built and trained as its trial was (so the adapter is found again by its key),
    evaluated on the test split."""
    sub = build(run, prep, proportions, budget, Path(run.work_dir) / "mixture" / study / f"final-{name}" / "subset.jsonl")
    return evaluate(run, finetune(run, sub), test, test_digest).result()


def search(run: Run, prep: Prepared, study: str, storage: str, budget: int, val: str, feedback: str = "auto") -> Duet:
    """DUET's loop until ``3 + mixture.trials`` trials are complete (a resumed study runs only what is missing):
    uniform, size-proportional and TaskPGM first, then the sampler's proposals, each scored on ``val``."""
    m, names = run.cfg.mixture, list(prep.domains.names)
    duet = Duet(study, storage, names, floor=m.floor, sampler=m.sampler, seed=m.seed)
    if not duet.study.trials:  # a new study: the three warm starts come first
        duet.enqueue([1.0] * len(names), "uniform")
        duet.enqueue([prep.domains.sizes[d] for d in names], "size-proportional")
        duet.enqueue(prep.pgm["proportions"], "taskpgm")
    while sum(t.state.name == "COMPLETE" for t in duet.study.trials) < 3 + m.trials:
        prop = duet.suggest()
        label = duet.study.get_trials(deepcopy=False)[prop.trial].user_attrs.get("warm_start", "duet")
        score = trial(run, prep, study, storage, prop.trial, label, prop.proportions, budget, val, feedback)
        if feedback != "external":
            duet.observe(prop.trial, score)
        get_run_logger().info("trial %d (%s): score %.4f", prop.trial, label, score)
    return duet
