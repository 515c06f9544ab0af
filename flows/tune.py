"""Tuning flow: an Optuna study over how to select and train, judged on the validation split, pruned per epoch.

Features are computed once per representation the space names (shard by shard, as every flow does); then each
trial, a Prefect subflow, selects with its settings, fine-tunes with a validation check after each epoch (the
study's pruner may stop it there) and tells the study its score. The study lives in Optuna storage, so a killed
run resumes it and several processes may run trials of one study at once. At the end the best configuration
(by validation score) is re-run with ``tune.final_seeds`` and scored once on the test split beside random at the
same budget and seeds, with the hierarchical interval: the search never sees the number it reports.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact, \
    update_progress_artifact
from optuna.trial import TrialState

from flows.env import EnvSettings
from flows.recipe import (Run, evaluate, featurise, finetune, load_data, locations_of, open_run, run_at, select,
                          target_files)
from flows.runtime import deployment_task_runner, versions
from tasks.data import validation_split_task
from tasks.report import artifact_key, with_inline_images
from tasks.tune import checked_finetune_task
from winnow.budget import resolve_budget
from winnow.errors import ConfigError, WinnowError
from winnow.experiment.stats import hierarchical_interval, interval_label, t_interval
from winnow.hashing import file_digest
from winnow.recipe import Arm, Recipe
from winnow.report import markdown_table, plot_study
from winnow.settings import WinnowSettings
from winnow.tune.space import check_space, distributions, fine_tune_steps, grid_cost, grid_points, trial_settings
from winnow.tune.study import dashboard_arg, enqueue_grid, importances, latest_of, next_trial, open_study, space_digest


@flow(name="tune-trial", log_prints=True)
def tune_trial(number: int, settings: dict[str, Any], representation: str, tables: dict[str, dict[str, Any]],
               pool_table: str, val: str, val_digest: str, test: str, locations: dict[str, Any], storage: str,
               study: str, max_epochs: int) -> dict[str, Any]:
    """One trial: select with its settings (leaving out copies of validation and test items), then the checked
    fine-tune that reports each epoch's validation score to the study."""
    cfg = WinnowSettings.model_validate(settings)
    loc = locations
    run = run_at(cfg, loc)
    sel = cfg.selection
    arm = Arm(name=f"trial-{number}", representation=representation, selector=sel.selector, budget=sel.budget,
              seed=sel.seed)
    sub = select(run, arm, pool_table, tables, Path(loc["work_dir"]) / "tune" / study / "subsets", [val, test])
    path, model = run.trained
    res = checked_finetune_task(sub["path"], sub["digest"], path, model, cfg.finetune, cfg.finetune_lora, val,
                                val_digest, cfg.eval, loc["work_dir"], storage, study, number, cfg.tune, max_epochs)
    return {**res, "budget": sub["budget"]}


def _max_epochs(cfg: WinnowSettings) -> int:
    p = cfg.tune.space.get("finetune.epochs")
    if p is None:
        return cfg.finetune.epochs
    return int(max(p.choices) if p.choices is not None else p.high)


def _study_name(storage: str, family: str, pool_rows: int, min_growth: float) -> tuple[str | None, str]:
    """The study to run and why: ``family`` itself (resumed or new); with ``min_growth`` (a deployment's
    re-tune), a new study once the pool grew by that share since the family's last one, else none."""
    if min_growth <= 0:
        return family, "as named"
    latest = latest_of(storage, family)
    if latest is None:
        return family, "first study of this family"
    name, rows = latest
    grown = (pool_rows - rows) / max(1, rows)
    if grown < min_growth:
        return None, f"the pool grew {grown:.1%} since study {name!r} ({rows} rows), under min_growth {min_growth:.0%}"
    return f"{family}-rows{pool_rows}", f"the pool grew {grown:.1%} since study {name!r}"


@flow(name="tune", log_prints=True, task_runner=deployment_task_runner())
def tune(pool: str, query: str, test: str, out: str, settings: dict[str, Any], store_uri: str = "",
         work_dir: str = "", worker_threads: int = 0, optuna_storage: str = "", study: str = "tune",
         trials: int = 0, min_growth: float = 0.0, val: str = "") -> dict[str, Any]:
    """``tune.trials`` (or ``trials``) finished trials of the study over ``tune.space``, then the best on test.
    Without ``val``, a ``tune.val_share`` of ``test`` (by id) scores the trials. ``min_growth`` (a scheduled
    re-tune) starts a new study only once the pool grew by that share since the family's last one."""
    logger = get_run_logger()
    t0 = time.time()
    run = open_run(settings, store_uri, work_dir, worker_threads)
    run, files = target_files(run, query=query, val=val, test=test)
    query, val, test = files["query"], files["val"], files["test"]
    cfg, tcfg = run.cfg, run.cfg.tune
    reps = check_space(cfg)
    storage = optuna_storage or EnvSettings().optuna_path
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    split = "validation `" + Path(val).name + "`" if val else ""
    if not val:  # half of the test file (by id) scores the trials, the other half is the untouched test split
        parts = validation_split_task(test, str(Path(run.work_dir) / "tune" / "splits" / file_digest(test)),
                                      tcfg.val_share, tcfg.seed)
        val, test = parts["val"], parts["test"]
        split = (f"validation = {parts['n_val']} records of the test file chosen by id (share {tcfg.val_share}); "
                 f"test = its other {parts['n_test']}")
    data = load_data(run, Recipe(pool=pool, query=query, test=test, settings=cfg,
                                 arms=tuple(Arm(name=r, representation=r) for r in reps)))
    pool_rows = data["pool"]["table_rows"]
    name, why = _study_name(storage, study, pool_rows, min_growth)
    if name is None:
        logger.info("no re-tune: %s", why)
        return {"skipped": why}
    feats = featurise(run, data, reps, query)
    tables = feats["tables"]
    val_digest, test_digest = file_digest(val), file_digest(test)
    max_epochs = _max_epochs(cfg)
    fixed = cfg.model_dump(mode="json", exclude={"tune", "selection", "finetune", "finetune_lora"})
    signature = space_digest(tcfg, {"pool": [data["pool"]["table"], data["pool"]["version"]], "val": val_digest,
                                    "query": file_digest(query), "model": run.model_path, "fixed": json.dumps(fixed)})
    st = open_study(name, storage, tcfg, max_epochs, signature)
    st.set_user_attr("family", study)
    st.set_user_attr("pool_rows", pool_rows)
    n = trials or tcfg.trials
    if tcfg.sampler == "grid":  # every point queued once; the grid ends where it ends
        enqueue_grid(st, tcfg)
        n = min(n, len(grid_points(tcfg)))
    dists = distributions(tcfg.space)
    locations = locations_of(run)
    logger.info("study %r (%s) in %s: %d finished trials wanted", name, why, storage, n)
    progress = create_progress_artifact(0.0, key=artifact_key(f"tune-{name}", "trials"),
                                        description="tuning trials finished")
    while (trial := next_trial(st, dists, n)) is not None:
        try:
            tcfg_trial, rep = trial_settings(cfg, trial.params)
        except ConfigError as e:
            st.tell(trial, state=TrialState.FAIL)
            logger.warning("trial %d: %s; failed", trial.number, e)
            continue
        try:
            res = tune_trial(trial.number, tcfg_trial.model_dump(mode="json"), rep, tables, data["pool"]["table"],
                             val, val_digest, test, locations, storage, name, max_epochs)
        except WinnowError as e:  # an expected error of this point (a budget the pool cannot fill...): next point
            trial.set_user_attr("error", str(e)[:500])
            st.tell(trial, state=TrialState.FAIL)
            logger.warning("trial %d %s failed: %s", trial.number, trial.params, e)
            continue
        for k in ("steps", "budget", "adapter", "reused"):
            trial.set_user_attr(k, res[k])
        trial.set_user_attr("epochs", len(res["history"]))
        trial.set_user_attr("last_value", res["history"][-1]["value"])
        if res["pruned"]:
            st.tell(trial, state=TrialState.PRUNED)
        else:
            st.tell(trial, res["history"][-1]["value"])
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in st.get_trials(deepcopy=False))
        update_progress_artifact(progress, min(100.0, 100.0 * done / n))
        logger.info("trial %d %s: %s %s after %d epoch(s), %d steps (%d/%d)", trial.number, trial.params,
                    "pruned at" if res["pruned"] else "validation", round(res["history"][-1]["value"], 4),
                    len(res["history"]), res["steps"], done, n)
    return _finish(run, st, data, tables, test, test_digest, out_dir, pool_rows, storage, split, time.time() - t0)


def _finish(run: Run, st: optuna.Study, data: dict[str, Any], tables: dict[str, dict[str, Any]], test: str,
            test_digest: str, out_dir: Path, pool_rows: int, storage: str, split: str,
            seconds: float) -> dict[str, Any]:
    """The best configuration and random, re-run with each final seed and scored once on test; the report."""
    cfg, tcfg = run.cfg, run.cfg.tune
    complete = st.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise WinnowError(f"study {st.study_name!r}: no trial completed (all failed or were pruned); see the log")
    best = st.best_trial
    bcfg, brep = trial_settings(cfg, best.params)
    brun = replace(run, cfg=bcfg)
    evals: dict[str, dict[int, Any]] = {"best": {}, "random": {}}
    for seed in tcfg.final_seeds:
        for method, selector in (("best", bcfg.selection.selector), ("random", "random")):
            arm = Arm(name=f"{method}_s{seed}", representation=brep, selector=selector, budget=bcfg.selection.budget,
                      seed=seed)
            sub = select(brun, arm, data["pool"]["table"], tables, out_dir / "final", test)
            adapter = finetune(brun, sub, bcfg.finetune.model_copy(update={"seed": seed}))
            evals[method][seed] = evaluate(brun, adapter, test, test_digest)
    scores = {m: {s: f.result() for s, f in by_seed.items()} for m, by_seed in evals.items()}
    # per seed × test example: the metric, the response loss, and what the study maximised (one of the two)
    per_ex = {m: {k: np.array([[p[k] for p in scores[m][s]["predictions"]] for s in tcfg.final_seeds])
                  for k in ("score", "loss")} for m in scores}
    crit = {m: per_ex[m]["score"] if tcfg.score == "metric" else -per_ex[m]["loss"] for m in per_ex}
    diff, t_lo, t_hi = t_interval(crit["best"].mean(axis=1) - crit["random"].mean(axis=1))
    b_lo, b_hi = hierarchical_interval(crit["best"] - crit["random"])
    metric = scores["best"][tcfg.final_seeds[0]]["metric"]
    n_budget = resolve_budget(bcfg.selection.budget, pool_rows)
    test_rows = []
    for m in ("best", "random"):
        by_seed = per_ex[m]["score"].mean(axis=1)
        loss = per_ex[m]["loss"].mean(axis=1)
        test_rows.append({"method": m, "split": "test", "budget": n_budget, "seeds": len(by_seed),
                          metric: round(float(by_seed.mean()), 4),
                          f"{metric} std": _r(by_seed.std(ddof=1)) if len(by_seed) > 1 else None,
                          "response_loss": round(float(loss.mean()), 4),
                          "response_loss std": _r(loss.std(ddof=1)) if len(loss) > 1 else None})
    criterion = metric if tcfg.score == "metric" else "−response_loss"
    paired = {"criterion": criterion, "diff": round(diff, 4), "t_low": _r(t_lo), "t_high": _r(t_hi),
              "boot_low": round(b_lo, 4), "boot_high": round(b_hi, 4), "boot_over": interval_label(len(tcfg.final_seeds))}

    trials = st.get_trials(deepcopy=False)
    rows = [{"trial": t.number, "state": t.state.name.lower(), "value": _r(t.value),
             "epochs": t.user_attrs.get("epochs"), "steps": t.user_attrs.get("steps", 0),
             **({"retry_of": t.user_attrs["retry_of"]} if "retry_of" in t.user_attrs else {}),
             **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in t.params.items()}} for t in trials]
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    spent = int(sum(t.user_attrs.get("steps", 0) for t in trials))
    grid = grid_cost(cfg, pool_rows)
    full_steps = sum(fine_tune_steps(trial_settings(cfg, t.params)[0], pool_rows) for t in finished)
    imp = importances(st, tcfg.seed)
    plot_study([t.user_attrs.get("steps", 0) for t in finished],
                      [t.value if t.state == TrialState.COMPLETE else t.user_attrs.get("last_value") for t in finished],
                      [t.state == TrialState.PRUNED for t in finished], grid["steps"],
                      "score" if tcfg.score == "metric" else "−response loss", out_dir / "best_so_far.png")
    cost = [{"run": "this study", "configurations": len(finished), "fine-tune steps": spent},
            {"run": "same trials without pruning", "configurations": len(finished), "fine-tune steps": full_steps},
            {"run": f"full grid ({tcfg.grid_points} values per range)", "configurations": grid["configurations"],
             "fine-tune steps": grid["steps"]}]
    best_yaml = bcfg.model_dump(mode="json", exclude={"tune"})
    (out_dir / "best.yaml").write_text(yaml.safe_dump(best_yaml, sort_keys=False))
    (out_dir / "trials.json").write_text(json.dumps(rows, indent=1))
    parts = [f"# Winnow tuning study `{st.study_name}`",
             f"{len(finished)} finished trials ({sum(t.state == TrialState.PRUNED for t in finished)} pruned by the "
             f"{tcfg.pruner} pruner), {len(trials) - len(finished)} failed or running; {seconds / 60:.1f} min. "
             f"Trials are scored on the **validation** split ({'eval.metric' if tcfg.score == 'metric' else '−response loss'}); "
             f"the search never saw the test split. Splits: {split}.",
             f"## Best configuration (validation {best.value:.4f}, trial {best.number})\n" +
             markdown_table([{"parameter": k, "value": v} for k, v in best.params.items()]) +
             "\n\nIts settings: `best.yaml` (representation: " + brep + ").",
             "## Test split: best configuration vs random at the same budget\n" + markdown_table(test_rows) +
             f"\n\nPaired difference best − random in the study's criterion ({criterion}), seeds "
             f"{list(tcfg.final_seeds)}:\n\n" + markdown_table([paired]) + "\n\nt: 95 % t-interval over seeds; "
             "boot: 95 % hierarchical bootstrap over seeds and test examples.",
             "## Cost\n" + markdown_table(cost) + "\n\n![best so far](best_so_far.png)",
             "## Parameter importance (fANOVA over complete trials)\n" +
             (markdown_table([{"parameter": k, "importance": v} for k, v in imp.items()]) if isinstance(imp, dict)
              else imp),
             "## Trials\n" + markdown_table(rows),
             f"Study in Optuna storage `{storage}`; browse it with `optuna-dashboard {dashboard_arg(storage)}`.",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items())]
    md = "\n\n".join(parts) + "\n"
    (out_dir / "tune.md").write_text(md)
    create_markdown_artifact(markdown=with_inline_images(md, out_dir), key=artifact_key(f"tune-{st.study_name}", "report"),
                             description="tuning study: trials, importance, best on test")
    create_table_artifact(table=rows, key=artifact_key(f"tune-{st.study_name}", "table"), description="tuning trials")
    return {"report": str(out_dir / "tune.md"), "study": st.study_name, "best": best.params,
            "best_value": best.value, "test": test_rows, "paired": paired, "trials": rows, "cost": cost,
            "importance": imp}


def _r(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 4)
