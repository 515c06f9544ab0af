"""Tuning flow: an Optuna study over how to select and train, judged on the validation split, pruned per epoch.

Features are computed once per representation the space names; then each trial selects with its settings and
runs a checked fine-tune (a validation check after each epoch, where the study's pruner may stop it) as a task
on the flow's runner, and tells the study its score. The study lives in Optuna storage, so a killed run resumes
it and several processes may run trials of one study at once. At the end the best configuration (by validation
score) is re-run with ``tune.final_seeds`` and scored once on the test split beside random at the same budget
and seeds (``flows.tune_final``): the search never sees the number it reports.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from optuna.trial import TrialState
from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from flows.env import EnvSettings
from flows.run import Run, open_run
from flows.runtime import deployment_task_runner
from flows.steps import featurise, load_data, select, target_files
from flows.tune_final import finish
from flows.validation import planted_recall
from tasks.data import validation_split_task
from tasks.tune import checked_finetune_task
from winnow.budget import resolve_budget
from winnow.data.loaders import load_records
from winnow.errors import ConfigError, WinnowError
from winnow.hashing import file_digest
from winnow.recipe import Arm, Recipe
from winnow.reports.publish import ui_key
from winnow.results import Features, Split
from winnow.tune.space import check_space, distributions, grid_points, trial_settings
from winnow.tune.study import enqueue_grid, latest_of, next_trial, open_study, space_digest
from winnow.settings import WinnowSettings


def run_trial(run: Run, number: int, representation: str, feats: Features, pool_table: str, split: Split,
              storage: str, study: str, max_epochs: int) -> dict[str, Any]:
    """One trial: select with its settings (leaving out copies of validation and test items), then the checked
    fine-tune that reports each epoch's validation score to the study, on a worker."""
    sel, (base, model), cfg = run.cfg.selection, run.trained, run.cfg
    arm = Arm(name=f"trial-{number}", representation=representation, selector=sel.selector, budget=sel.budget,
              seed=sel.seed)
    if cfg.tune.score == "planted_recall":
        return planted_trial(run, arm, feats, pool_table, split)
    sub = select(run, arm, pool_table, feats, Path(run.work_dir) / "tune" / study / "subsets", [split.val, split.test])
    res = checked_finetune_task.submit(sub.path, sub.digest, base, model, cfg.finetune, cfg.finetune_lora, split.val,
                                       file_digest(split.val), cfg.eval, run.work_dir, storage, study, number, cfg.tune,
                                       max_epochs).result()
    return {**res, "budget": sub.size}


def planted_trial(run: Run, arm: Arm, feats: Features, pool_table: str, split: Split) -> dict[str, Any]:
    """The ``planted_recall`` objective: the validation rows planted in the pool, ranked by this trial's
    representation and selector; its value is their recall within the budget (random: chance). No fine-tune."""
    from winnow.store import lance

    rows = lance.open_table(lance.connect(run.store_uri), pool_table).count_rows()
    n = resolve_budget(arm.budget, rows)
    got = planted_recall(run, split.val, [arm], feats, {arm.name: n}).get(arm.name)
    if got is None and arm.selector != "random":
        raise ConfigError(f"tune.score=planted_recall: representation {arm.representation!r} cannot be planted")
    value = got["recall"] if got else n / (rows + len(load_records(split.val).records))
    return {"history": [{"epoch": 0, "value": value}], "pruned": False, "steps": 0, "adapter": "", "reused": False,
            "budget": n}


def study_name(storage: str, family: str, pool_rows: int, min_growth: float) -> tuple[str | None, str]:
    """The study to run and why: ``family`` itself (resumed or new); with ``min_growth`` (a deployment's
    re-tune), a new study once the pool grew by that share since the family's last one, else none."""
    if min_growth <= 0:
        return family, "as named"
    latest = latest_of(storage, family)
    if latest is None:
        return family, "first study of this family"
    grown = (pool_rows - latest[1]) / max(1, latest[1])
    if grown < min_growth:
        return None, f"the pool grew {grown:.1%} since study {latest[0]!r} ({latest[1]} rows), under min_growth {min_growth:.0%}"
    return f"{family}-rows{pool_rows}", f"the pool grew {grown:.1%} since study {latest[0]!r}"


@flow(name="tune", log_prints=True, task_runner=deployment_task_runner())
def tune(pool: str, query: str, test: str, out: str, settings: WinnowSettings, store_uri: str = "",
         work_dir: str = "", worker_threads: int = 0, optuna_storage: str = "", study: str = "tune",
         trials: int = 0, min_growth: float = 0.0, val: str = "") -> dict[str, Any]:
    """``tune.trials`` (or ``trials``) finished trials of the study over ``tune.space``, then the best on test.
    Without ``val``, a ``tune.val_share`` of ``test`` (by id) scores the trials."""
    logger, t0 = get_run_logger(), time.time()
    run = open_run(settings, store_uri, work_dir, worker_threads)
    run, files = target_files(run, query=query, val=val, test=test)
    cfg, tcfg = run.cfg, run.cfg.tune
    reps, storage = check_space(cfg), optuna_storage or EnvSettings().optuna_path
    split = (Split(files["val"], files["test"], 0, 0, f"validation `{Path(files['val']).name}`") if files["val"] else
             validation_split_task(files["test"], str(Path(run.work_dir) / "tune" / "splits" / file_digest(files["test"])),
                                   tcfg.val_share, tcfg.seed))
    data, _ = load_data(run, Recipe(pool=pool, query=files["query"], test=split.test, settings=cfg,
                                    arms=tuple(Arm(name=r, representation=r) for r in reps)))
    pool_rows = data["pool"].rows
    name, why = study_name(storage, study, pool_rows, min_growth)
    if name is None:
        logger.info("no re-tune: %s", why)
        return {"skipped": why}
    feats = featurise(run, data, reps, files["query"])
    p = tcfg.space.get("finetune.epochs")
    max_epochs = cfg.finetune.epochs if p is None else int(max(p.choices) if p.choices is not None else p.high)
    fixed = cfg.model_dump(mode="json", exclude={"tune": True, "selection": True, "finetune": True,
                                                   "finetune_lora": True, "model": {"name"}})
    signature = space_digest(tcfg, {"pool": [data["pool"].table, data["pool"].version], "val": file_digest(split.val),
                                    "query": file_digest(files["query"]), "model": run.base.fingerprint,
                                    "fixed": json.dumps(fixed)})
    st = open_study(name, storage, tcfg, max_epochs, signature)
    st.set_user_attr("family", study)
    st.set_user_attr("pool_rows", pool_rows)
    n = trials or tcfg.trials
    if tcfg.sampler == "grid":  # every point queued once; the grid ends where it ends
        enqueue_grid(st, tcfg)
        n = min(n, len(grid_points(tcfg)))
    dists = distributions(tcfg.space)
    logger.info("study %r (%s) in %s: %d finished trials wanted", name, why, storage, n)
    progress = create_progress_artifact(0.0, key=ui_key(f"tune-{name}", "trials"), description="tuning trials finished")
    while (trial := next_trial(st, dists, n)) is not None:
        try:
            trial_cfg, rep = trial_settings(cfg, trial.params)
            res = run_trial(run.with_settings(trial_cfg), trial.number, rep, feats, data["pool"].table, split, storage,
                            name, max_epochs)
        except (ConfigError, WinnowError) as e:  # an expected error of this point (a budget the pool cannot fill)
            trial.set_user_attr("error", str(e)[:500])
            st.tell(trial, state=TrialState.FAIL)
            logger.warning("trial %d %s failed: %s", trial.number, trial.params, e)
            continue
        for k in ("steps", "budget", "adapter", "reused"):
            trial.set_user_attr(k, res[k])
        trial.set_user_attr("epochs", len(res["history"]))
        trial.set_user_attr("last_value", res["history"][-1]["value"])
        st.tell(trial, state=TrialState.PRUNED) if res["pruned"] else st.tell(trial, res["history"][-1]["value"])
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in st.get_trials(deepcopy=False))
        update_progress_artifact(progress, min(100.0, 100.0 * done / n))
        logger.info("trial %d %s: %s %s after %d epoch(s), %d steps (%d/%d)", trial.number, trial.params,
                    "pruned at" if res["pruned"] else "validation", round(res["history"][-1]["value"], 4),
                    len(res["history"]), res["steps"], done, n)
    return finish(run, st, data["pool"], feats, split, Path(out).resolve(), storage, time.time() - t0)
