"""Commands that study many configurations: experiment (the grid), tune (an Optuna study) and feedback (a
person's score for a waiting mixture trial); the mixture commands are in ``flows.cli.mixture``."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from flows.cli.app import (ConfigOpt, ModelOpt, SetOpt, app, budget_value, environment, launch, prepare,
                           print_table, print_warnings)


@app.command()
def experiment(
    config: Annotated[Path, typer.Argument(help="experiment YAML (see configs/experiment-demo.yaml)")],
    out: Annotated[Optional[Path], typer.Option(help="results folder (default runs/experiment-<name>)")] = None,
    budget: Annotated[Optional[list[str]], typer.Option(help="replace the grid's budgets: '5%', '0.05' or '14' "
                                                             "(repeatable)")] = None,
    model: ModelOpt = None, set_: SetOpt = None,
) -> None:
    """Selection vs random on your targets: representations × selectors × budgets × seeds, plus zero-shot,
    random and full-data baselines and the distance-quantile experiment; tables, plots and a report.
    Finished cells are reused, so re-running (or adding a seed or budget) computes only what is missing.

    Example: winnow experiment configs/experiment-demo.yaml --budget 14 --budget 28
    """
    from winnow.experiment.grid import load_experiment

    exp = load_experiment(str(config))
    budgets = [budget_value(b, "budgets") for b in budget] if budget else None
    out = out or Path("runs") / f"experiment-{exp.name}"
    from winnow.errors import DataFormatError

    for where, path in [("pool", exp.pool), *((f"targets.{t.name}", p) for t in exp.targets for p in (t.query, t.test))]:
        if Path(path).suffix and not Path(path).exists():
            raise DataFormatError(str(config), f"{path} does not exist", field=where)
    env, settings = prepare(Path(exp.settings) if exp.settings else None, [*exp.overrides, *(set_ or [])], model, out,
                            "experiment")
    from flows.experiment import experiment as experiment_flow

    result, minutes = launch(experiment_flow, env, settings, config=str(config), out=str(out), budgets=budgets)
    for name, rows in result["paired"].items():
        if rows:
            print_table(f"{name}: method − random (same budget, seed)", rows)
    print_warnings(result.get("warnings", []))
    for v in result.get("verdicts", []):
        typer.echo(f"verdict: {v}")
    typer.echo(f"{result['cells']} cells ({result['computed']} computed) in {minutes:.1f} min; "
               f"report: {result['report']}")


@app.command()
def tune(
    pool: Annotated[str, typer.Option(help="candidate pool: a file or a store table name")],
    query: Annotated[str, typer.Option(help="a few examples of the target task (what selection aims at)")],
    test: Annotated[str, typer.Option(help="test split: scores only the best configuration, once, beside random")],
    out: Annotated[Path, typer.Option(help="folder for tune.md, trials.json, best.yaml and plots")],
    val: Annotated[Optional[str], typer.Option(help="validation split that scores every trial and its pruning "
                                                    "(default: tune.val_share of --test by id)")] = None,
    trials: Annotated[Optional[int], typer.Option(min=1, help="finished trials to run to (default tune.trials)")] = None,
    study: Annotated[str, typer.Option(help="Optuna study name; re-running resumes it, and several processes may "
                                            "run it at once")] = "tune",
    model: ModelOpt = None, config: ConfigOpt = None, set_: SetOpt = None,
) -> None:
    """An Optuna study over how to select and train (tune.space: representation, selector, budget, learning
    rate, epochs, ...): each trial selects, fine-tunes with a validation check per epoch (pruned early when it
    cannot win) and is scored on --val; the best configuration is then run with tune.final_seeds and scored
    once on --test beside random at the same budget.

    Example: winnow tune --config configs/tune-demo.yaml --pool data/demo/pool.jsonl --query data/demo/query.jsonl
    --test data/demo/test.jsonl --out runs/tune-demo --trials 12
    """
    env, settings = prepare(config, list(set_ or []), model, out, "tune", pool=pool, query=query, test=test, val=val)
    from flows.tune import tune as tune_flow

    result, minutes = launch(tune_flow, env, settings, pool=pool, query=query, test=test, out=str(out),
                             optuna_storage=env.optuna_path, study=study, trials=trials or 0, val=val or "")
    fixed = ("trial", "state", "value", "epochs", "steps", "retry_of")
    print_table(f"study '{result['study']}': trials (validation split)",
                [{**{k: t[k] for k in fixed if k in t},
                  "values": ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in t.items() if k not in fixed)}
                 for t in result["trials"]])
    print_table("cost in fine-tune steps", result["cost"])
    print_table("test split: best configuration vs random (same budget, seeds)", result["test"])
    p = result["paired"]
    typer.echo(f"best − random in {p['criterion']}: {p['diff']:+.4f} (t {p['t_low']}..{p['t_high']}; boot "
               f"{p['boot_low']}..{p['boot_high']}, {p['boot_over']}) in {minutes:.1f} min; report: {result['report']}")


@app.command()
def feedback(
    study: Annotated[str, typer.Option(help="the study the mixture flow runs")],
    trial: Annotated[int, typer.Option(help="the trial number shown by the flow")],
    score: Annotated[float, typer.Option(help="the trial's score (higher is better), e.g. a user rating")],
) -> None:
    """Post an external score for a waiting mixture trial; the flow continues by itself.

    Example: winnow feedback --study demo-mixture --trial 3 --score 0.72
    """
    from winnow.mixture.duet import post_feedback

    env = environment(command="feedback")
    post_feedback(env.optuna_path, study, trial, score)
    typer.echo(f"trial {trial} of {study}: score {score} recorded")
