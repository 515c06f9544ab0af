"""Mixture search: TaskPGM proportions from proxy affinities, then DUET trials driven by target feedback.

Trials are scored on a validation split (``val``, or a share of ``test`` carved out by id); the mixture the
search chooses is then evaluated once on the test split, which no trial has seen, beside the two mixtures
fixed before the search (uniform, TaskPGM). The search's own best score is reported as a validation number.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.env import EnvSettings
from flows.recipe import Run, featurise, finetune, load_data, open_run, target_files
from flows.runtime import deployment_task_runner
from tasks.data import data_task, validation_split_task
from tasks.evaluation import evaluate_task
from tasks.mixture import (build_mixture_task, decontaminate_domains_task, distributions_task, influence_task,
                           loglik_row_task, split_domains_task, taskpgm_task)
from tasks.report import artifact_key, with_inline_images
from tasks.training import finetune_task
from winnow.budget import resolve_budget
from winnow.errors import ConfigError
from winnow.hashing import file_digest, text_digest
from winnow.mixture.duet import Duet
from winnow.recipe import Recipe
from winnow.report import decontamination_section, markdown_table, plot_affinity, plot_trials, scores
from winnow.settings import WinnowSettings


@flow(name="duet-trial", log_prints=True)
def duet_trial(trial: int, label: str, proportions: list[float], domains: dict[str, Any], budget: int,
               model_path: str, val: str, settings: dict[str, Any], work_dir: str, feedback: str,
               storage: str, study: str, scores_path: str | None = None) -> float:
    """One round: build the mixture, fine-tune a fresh adapter on a clean base, and score it on the validation
    split (or wait for a person's score). ``settings`` are the parent run's, already validated and complete."""
    cfg = WinnowSettings.model_validate(settings)
    logger = get_run_logger()
    trial_dir = Path(work_dir) / "mixture" / study / f"trial-{trial}"
    sub = build_mixture_task(domains["train"], proportions, budget, cfg.mixture.seed, str(trial_dir / "subset.jsonl"),
                             scores_path, greedy=cfg.mixture.within == "greedy", drop_share=cfg.mixture.drop_share)
    adapter = finetune_task(sub["path"], sub["digest"], model_path, cfg.model, cfg.finetune, cfg.finetune_lora,
                            work_dir)
    if feedback == "external":
        create_markdown_artifact(key=artifact_key(f"{study}-trial-{trial}", "waiting"), markdown=(
            f"# Trial {trial} ({label}) waits for a score\n\nAdapter: `{adapter}`\n\nMixture: {sub['counts']}\n\n"
            f"Post the score with `winnow feedback --study {study} --trial {trial} --score X`."))
        logger.info("trial %d: adapter %s published; waiting for `winnow feedback --study %s --trial %d`",
                    trial, adapter, study, trial)
        return Duet(study, storage, domains["domains"]).wait(trial, cfg.mixture.feedback_timeout_s)
    metrics = evaluate_task(model_path, adapter, val, file_digest(val), cfg.model, cfg.eval)
    return metrics["score"] if cfg.mixture.score == "metric" else -metrics["response_loss"]


def _on_test(name: str, proportions: list[float], domains: dict[str, Any], budget: int, model_path: str,
             test: str, test_digest: str, cfg: WinnowSettings, work_dir: str, study: str,
             scores_path: str | None) -> dict[str, Any]:
    """One fixed mixture, built and trained as its trial was (so the adapter is found again by its key),
    evaluated on the test split."""
    final_dir = Path(work_dir) / "mixture" / study / f"final-{name}"
    sub = build_mixture_task(domains["train"], proportions, budget, cfg.mixture.seed, str(final_dir / "subset.jsonl"),
                             scores_path, greedy=cfg.mixture.within == "greedy", drop_share=cfg.mixture.drop_share)
    adapter = finetune_task(sub["path"], sub["digest"], model_path, cfg.model, cfg.finetune, cfg.finetune_lora,
                            work_dir)
    return evaluate_task(model_path, adapter, test, test_digest, cfg.model, cfg.eval)


def prepare(run: Run, pool: dict[str, Any], study_dir: Path, targets: list[str], plots_dir: Path) -> dict[str, Any]:
    """What every mixture over this pool needs, computed once: the domains (trainable and held-out parts, less
    copies of the ``targets``' items), TaskPGM's affinity and proportions from one proxy per domain, and, for
    ``mixture.within`` influence or greedy, each example's influence score."""
    m = run.cfg.mixture
    domains = split_domains_task(run.store_uri, pool["table"], pool["version"], m.domain_key, m.holdout, m.seed,
                                 str(study_dir / "domains"))
    domains = decontaminate_domains_task(domains, targets, str(study_dir / "clean"), run.cfg.selection.decontaminate)
    names = domains["domains"]
    # Proxies: one short LoRA per domain, in parallel on the Dask workers (cached by content).
    proxies = {d: finetune(run, {"path": domains["train"][d], "digest": domains["digests"][d]}, m.proxy) for d in names}
    held = [domains["heldout"].get(d, domains["train"][d]) for d in names]
    held_digest = text_digest([file_digest(p) for p in held])
    if m.affinity == "llr":
        rows = [loglik_row_task.submit(run.model_path, proxies[d], held, held_digest, run.worker_model) for d in names]
        pgm = taskpgm_task(m.affinity, [r.result() for r in rows], None, m.beta, m.lam, m.ridge, m.clusters)
    else:
        dists = [distributions_task.submit(run.model_path, proxies[d], held, held_digest, run.worker_model,
                                           str(plots_dir / f"proxy-{i}.npy")) for i, d in enumerate(names)]
        pgm = taskpgm_task(m.affinity, None, [f.result() for f in dists], m.beta, m.lam, m.ridge, m.clusters)
    plot_affinity(pgm["affinity"], names, plots_dir / "affinity.png")
    scores_path = None
    if m.within in ("influence", "greedy"):  # the pool's gradients (Adam) against each domain's held-out gradients (plain)
        held_file = study_dir / "heldout.jsonl"
        held_file.write_text("".join(Path(p).read_text() for p in domains["heldout"].values()))
        held_data = data_task(str(held_file), run.store_uri, "heldout")
        grads = featurise(run, {"pool": pool, "query": held_data}, ["gradients"])["tables"]["gradients"]
        scores_path = influence_task(run.store_uri, grads["pool"], grads["query"], grads["weights"], m.domain_key,
                                     str(study_dir / "influence.json"))
    return {"domains": domains, "pgm": pgm, "scores_path": scores_path}


def search(run: Run, prep: dict[str, Any], study: str, storage: str, budget: int, val: str, feedback: str = "auto",
           cfg: WinnowSettings | None = None) -> Duet:
    """DUET's loop until ``3 + mixture.trials`` trials are complete (a resumed study runs only what is missing):
    uniform, size-proportional and TaskPGM first, then the sampler's proposals, each scored on ``val``."""
    logger = get_run_logger()
    cfg = cfg or run.cfg
    m, domains, names = cfg.mixture, prep["domains"], prep["domains"]["domains"]
    duet = Duet(study, storage, names, floor=m.floor, sampler=m.sampler, seed=m.seed)
    if not duet.study.trials:  # a new study: the three warm starts come first
        duet.enqueue([1.0] * len(names), "uniform")
        duet.enqueue([domains["sizes"][d] for d in names], "size-proportional")
        duet.enqueue(prep["pgm"]["proportions"], "taskpgm")
    while sum(t.state.name == "COMPLETE" for t in duet.study.trials) < 3 + m.trials:
        prop = duet.suggest()
        label = duet.study.get_trials(deepcopy=False)[prop.trial].user_attrs.get("warm_start", "duet")
        score = duet_trial(prop.trial, label, prop.proportions, domains, budget, run.model_path, val,
                           cfg.model_dump(mode="json"), run.work_dir, feedback, storage, study, prep["scores_path"])
        if feedback != "external":
            duet.observe(prop.trial, score)
        logger.info("trial %d (%s): score %.4f", prop.trial, label, score)
    return duet


@flow(name="mixture", log_prints=True, task_runner=deployment_task_runner())
def mixture(pool: str, test: str, out: str, settings: dict[str, Any], store_uri: str = "", work_dir: str = "",
            optuna_storage: str = "", study: str = "mixture", feedback: str = "auto", worker_threads: int = 0,
            val: str = "") -> dict[str, Any]:
    """Warm-started DUET over domain proportions; the target is seen only through the validation split's score
    (or a person's), and the chosen mixture is measured once on ``test``."""
    shipped = (settings.get("finetune") or {}).get("model")  # refused before open_run prepares that model
    if shipped and shipped != (settings.get("model") or {}).get("name", EnvSettings().model):
        raise ConfigError("finetune.model: the mixture search trains its proxies and trials on model.name; set "
                          "model.name to the model you ship (LESS-T applies to curate, compare, experiment, retrain)")
    run = open_run(settings, store_uri, work_dir, worker_threads)
    run, files = target_files(run, test=test, val=val)  # data.target's layout and map, when set
    test, val = files["test"], files["val"]
    cfg, m = run.cfg, run.cfg.mixture
    optuna_storage = optuna_storage or EnvSettings().optuna_path
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    study_dir = Path(run.work_dir) / "mixture" / study
    data = load_data(run, Recipe(pool=pool, settings=cfg))["pool"]
    if val or feedback == "external":
        splits = {"val": val, "test": test, "how": f"validation `{val}`" if val else "a person's scores"}
    else:  # no validation set: half of the test file (by id) drives the search, the other half judges it
        splits = validation_split_task(test, str(study_dir / "splits"), m.val_share, m.seed)
        splits["how"] = (f"validation = {splits['n_val']} records of `{Path(test).name}` chosen by id (share "
                         f"{m.val_share}); test = its other {splits['n_test']}")
    prep = prepare(run, data, study_dir, [p for p in (splits["val"], splits["test"]) if p], out_dir)
    domains, pgm, scores_path = prep["domains"], prep["pgm"], prep["scores_path"]
    names = domains["domains"]
    budget = resolve_budget(m.budget, sum(domains["sizes"].values()), name="mixture.budget")
    model_path, work_dir = run.model_path, run.work_dir
    duet = search(run, prep, study, optuna_storage, budget, splits["val"], feedback)

    trials = [{"trial": t.number, "start": t.user_attrs.get("warm_start", "duet"), "score": round(t.value, 4),
               **{d: round(p, 3) for d, p in zip(names, t.user_attrs["proportions"])}}
              for t in duet.study.trials if t.state.name == "COMPLETE"]
    plot_trials(trials, names, out_dir / "trials.png")
    best, best_score = duet.best()
    fixed = {t.user_attrs.get("warm_start"): t.user_attrs["proportions"] for t in duet.study.trials
             if t.state.name == "COMPLETE" and t.user_attrs.get("warm_start") in ("uniform", "taskpgm")}
    test_digest = file_digest(splits["test"])
    final = {name: _on_test(name, props, domains, budget, model_path, splits["test"], test_digest, cfg, work_dir,
                            study, scores_path)
             for name, props in {"chosen": best, **fixed}.items()}
    final_rows = [{"mixture": name, **scores(r), "split": "test", "n_test": r["n"]} for name, r in final.items()]
    score_name = cfg.eval.metric if m.score == "metric" else "−response loss"
    md = "\n\n".join([
        f"# Mixture search: {study}",
        f"Budget {budget} examples over {len(names)} domains (key `{m.domain_key}`). Trials are scored by "
        f"{score_name} on the validation split ({splits['how']}); the table below them is the test split, which "
        "no trial saw.",
        "## Trials (validation split)\n" + markdown_table(trials),
        "![proportions and best-so-far](trials.png)",
        f"## Chosen mixture (validation {score_name} {best_score:.4f})\n" +
        markdown_table([{d: round(p, 3) for d, p in zip(names, best)}]),
        "## Test split: the chosen mixture and the two fixed before the search\n" + markdown_table(final_rows),
        decontamination_section(domains["decontamination"], title="Decontamination of the domains against "
                                "validation and test", refill=False),
        f"## TaskPGM ({m.affinity} affinity, β = {m.beta}, λ = {m.lam})\n" +
        markdown_table([{d: round(p, 3) for d, p in zip(names, pgm["proportions"])}]),
        "![task affinity](affinity.png)",
        f"Dashboard: `optuna-dashboard {optuna_storage if '://' in optuna_storage else 'sqlite:///' + optuna_storage}`"])
    (out_dir / "mixture.md").write_text(md + "\n")
    create_markdown_artifact(markdown=with_inline_images(md, out_dir), key=artifact_key(f"mixture-{study}", "report"),
                             description="mixture search report")
    create_table_artifact(table=trials, key=artifact_key(f"mixture-{study}", "trials"))
    return {"trials": trials, "best": dict(zip(names, best)), "best_score": best_score, "best_score_split": "validation",
            "test": {name: scores(r) for name, r in final.items()},
            "taskpgm": dict(zip(names, pgm["proportions"])), "report": str(out_dir / "mixture.md")}
