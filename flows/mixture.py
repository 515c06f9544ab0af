"""Mixture search: TaskPGM proportions from proxy affinities, then DUET trials driven by target feedback.

Trials are scored on a validation split (``val``, or a share of ``test`` carved out by id); the mixture the
search chooses is then evaluated once on the test split, which no trial has seen, beside the two mixtures
fixed before the search (uniform, TaskPGM). The search's own best score is reported as a validation number.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows.env import EnvSettings
from flows.mixture_steps import on_test, prepare, search
from flows.run import open_run, partial_settings
from flows.runtime import deployment_task_runner
from flows.steps import load_data, target_files
from tasks.data import validation_split_task
from tasks.report import publish_task
from winnow.budget import resolve_budget
from winnow.errors import ConfigError
from winnow.hashing import file_digest
from winnow.recipe import Recipe
from winnow.reports.mixture import render_mixture
from winnow.reports.plots import plot_trials
from winnow.results import Split
from winnow.tune.study import dashboard_arg
from winnow.settings import WinnowSettings


@flow(name="mixture", log_prints=True, task_runner=deployment_task_runner())
def mixture(pool: str, test: str, out: str, settings: WinnowSettings, store_uri: str = "", work_dir: str = "",
            optuna_storage: str = "", study: str = "mixture", feedback: str = "auto", worker_threads: int = 0,
            val: str = "") -> dict[str, Any]:
    """Warm-started DUET over domain proportions; the target is seen only through the validation split's score
    (or a person's), and the chosen mixture is measured once on ``test``."""
    given = partial_settings(settings)
    shipped = (given.get("finetune") or {}).get("model")  # refused before open_run prepares that model
    if shipped and shipped != (given.get("model") or {}).get("name", EnvSettings().model):
        raise ConfigError("finetune.model: the mixture search trains its proxies and trials on model.name; set "
                          "model.name to the model you ship (LESS-T applies to curate, compare, experiment, retrain)")
    run = open_run(settings, store_uri, work_dir, worker_threads)
    run, files = target_files(run, test=test, val=val)  # data.target's layout and map, when set
    m, storage = run.cfg.mixture, optuna_storage or EnvSettings().optuna_path
    out_dir, study_dir = Path(out).resolve(), Path(run.work_dir) / "mixture" / study
    pool_data = load_data(run, Recipe(pool=pool, settings=run.cfg))[0]["pool"]
    if files["val"] or feedback == "external":
        splits = Split(files["val"], files["test"], 0, 0, f"validation `{files['val']}`" if files["val"]
                       else "a person's scores")
    else:  # no validation set: half of the test file (by id) drives the search, the other half judges it
        splits = validation_split_task(files["test"], str(study_dir / "splits"), m.val_share, m.seed)
    prep = prepare(run, pool_data, study_dir, [p for p in (splits.val, splits.test) if p], out_dir)
    names = list(prep.domains.names)
    budget = resolve_budget(m.budget, sum(prep.domains.sizes.values()), name="mixture.budget")
    duet = search(run, prep, study, storage, budget, splits.val, feedback)

    done = [t for t in duet.study.trials if t.state.name == "COMPLETE"]
    trials = [{"trial": t.number, "start": t.user_attrs.get("warm_start", "duet"), "score": round(t.value, 4),
               **{d: round(p, 3) for d, p in zip(names, t.user_attrs["proportions"])}} for t in done]
    plot_trials(trials, names, out_dir / "trials.png")
    best, best_score = duet.best()
    fixed = {t.user_attrs.get("warm_start"): t.user_attrs["proportions"] for t in done
             if t.user_attrs.get("warm_start") in ("uniform", "taskpgm")}
    test_digest = file_digest(splits.test)
    final = {name: on_test(run, prep, study, name, props, budget, splits.test, test_digest)
             for name, props in {"chosen": best, **fixed}.items()}
    final_rows = [{"mixture": name, **e.scores(), "split": "test", "n_test": e.n} for name, e in final.items()]
    md = render_mixture(study=study, budget=budget, names=names, domain_key=m.domain_key,
                        score_name=run.cfg.eval.metric if m.score == "metric" else "−response loss", how=splits.how,
                        trials=trials, best=best, best_score=best_score, final_rows=final_rows,
                        decontamination=prep.domains.decontamination, pgm=prep.pgm, affinity=m.affinity, beta=m.beta,
                        lam=m.lam, dashboard=dashboard_arg(storage))
    report = publish_task(str(out_dir), f"mixture-{study}", md, report="mixture.md", description="mixture search report",
                          tables={"trials": ("trials on the validation split", trials)})
    return {"trials": trials, "best": dict(zip(names, best)), "best_score": best_score, "best_score_split": "validation",
            "test": {name: e.scores() for name, e in final.items()},
            "taskpgm": dict(zip(names, prep.pgm["proportions"])), "report": report}
