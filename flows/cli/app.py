"""The ``winnow`` Typer app and what every command shares: the environment, settings in one documented order,
the one way to launch a flow, and tables that print in full wherever the output goes.

Settings resolve as: built-in defaults < the environment (``WINNOW_MODEL``, ``WINNOW_SEED``) < ``--config``
< ``--set`` < a command's own flags (``--model``, ``--budget``, ``--target-metric``). Prefect is imported only
after the environment is set (see flows.env).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from flows.env import EnvSettings, apply_environment, start_private_server

if TYPE_CHECKING:
    from winnow.settings import WinnowSettings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Winnow: choose the data to fine-tune a language model on.")

SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override a setting: section.key=value "
                                                                   "(repeatable; `winnow settings` lists them)")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML settings file (see configs/; a run "
                                                                   "folder's settings.yaml repeats that run)")]
ModelOpt = Annotated[Optional[str], typer.Option(help="causal-LM directory or hub id; the last word on the model "
                                                      "(default: the config's model.name, else SmolLM2-135M)")]
BudgetOpt = Annotated[Optional[str], typer.Option(help="a share ('5%', '0.05') or a count ('200'); default: "
                                                       "selection.budget, 5%")]

# Setting keys set by a flag of this command, so an error about the setting names the flag the user typed.
FLAGS: dict[str, str] = {}


def environment(log_dir: Optional[Path] = None, command: str = "winnow") -> EnvSettings:
    """Environment settings, exported for Prefect and the workers, and this command's log file: the run
    folder's ``winnow.log`` when the command has one, else ``WINNOW_HOME/logs/<command>.log``."""
    from flows.logs import LOG_FILE_ENV

    env = EnvSettings()
    apply_environment(env)
    if LOG_FILE_ENV not in os.environ:  # one log per command run; the workers it starts append to it
        log = ((log_dir / "winnow.log") if log_dir else env.home / "logs" / f"{command}.log").resolve()
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"winnow {' '.join(sys.argv[1:])}\n")
        os.environ[LOG_FILE_ENV] = str(log)
    return env


def budget_value(text: str, key: str = "selection.budget") -> int | float:
    """Every command's ``--budget``: ``200`` is a count, ``5%`` or ``0.05`` a share, ``1`` one example, ``100%``
    or ``1.0`` the whole pool (winnow.budget); later errors about ``key`` name the flag."""
    from winnow.budget import parse_budget

    FLAGS[key] = "--budget"
    return parse_budget(text, name="--budget")


def budget_overrides(budget: Optional[str], key: str = "selection.budget") -> list[str]:
    return [] if budget is None else [f"{key}={budget_value(budget, key)!r}"]


def model_flag(model: Optional[str]) -> list[str]:
    """``--model`` is the last word on the model; without it the config file's ``model.name`` stands, and
    WINNOW_MODEL only fills an unnamed one."""
    if model is None:
        return []
    FLAGS["model.name"] = "--model"
    return [f"model.name={model}"]


def resolve(env: EnvSettings, config: Optional[Path], overrides: list[str]) -> "WinnowSettings":
    """Settings in the documented order (``overrides`` = --set, then the command's flags)."""
    from winnow.settings import load_settings

    seeds = [f"{k}={env.seed}" for k in ("warmup.train.seed", "features.seed", "selection.seed", "finetune.seed")
             if env.seed]  # WINNOW_SEED seeds every phase unless a --set names that phase's seed
    return load_settings(str(config) if config else None, [*seeds, *overrides], defaults={"model": {"name": env.model}})


def check_models(settings: "WinnowSettings", env: EnvSettings) -> None:
    """Every model a run names, checked before the server starts or anything is converted."""
    from winnow.models.loading import check_model_name

    check_model_name(settings.model.name, offline=env.offline)
    check_model_name(settings.finetune.model, offline=env.offline, key="finetune.model")


def check_files(**paths: Optional[str]) -> None:
    """Input files that must exist, checked before any model work or server start (a missing --pool once took
    45 s to report). A name without a suffix or slash may be a store table or a hub data set: left to the flow."""
    from winnow.errors import DataFormatError

    for flag, spec in paths.items():
        if spec and not Path(spec).exists() and (Path(spec).suffix or spec.startswith((".", "/", "~"))):
            raise DataFormatError(spec, f"does not exist (--{flag.replace('_', '-')})")


def prepare(config: Optional[Path], overrides: list[str], model: Optional[str], log_dir: Optional[Path] = None,
            command: str = "winnow", **files: Optional[str]) -> tuple[EnvSettings, "WinnowSettings"]:
    """Environment, validated settings, models and input files checked, and a private Prefect server started
    (or a configured one checked): every problem reported before any work starts."""
    check_files(**files)
    env = environment(log_dir, command)
    settings = resolve(env, config, [*overrides, *model_flag(model)])
    check_models(settings, env)
    start_private_server(env)  # before Prefect is imported (flows.runtime imports it)
    from flows.runtime import preflight

    preflight(env)
    return env, settings


def launch(flow: Any, env: EnvSettings, settings: "WinnowSettings", **params: Any) -> tuple[Any, float]:
    """The one way a command runs a flow: on this environment's Dask task runner, with the validated settings
    and the environment's store, work folder and worker threads; returns the result and the minutes it took."""
    from flows.runtime import task_runner

    t0 = time.time()
    result = flow.with_options(task_runner=task_runner(env))(
        settings=settings.model_dump(mode="json"), store_uri=env.store_uri, work_dir=str(env.home.resolve()),
        worker_threads=env.threads_per_worker, **params)
    minutes = (time.time() - t0) / 60
    if isinstance(result, dict):
        _record(flow.name, env, settings, params, result, minutes)
    return result, minutes


def _record(command: str, env: EnvSettings, settings: "WinnowSettings", params: dict[str, Any],
            result: dict[str, Any], minutes: float) -> None:
    """One entry in the store's run history (``winnow runs``): what ran, on what, and its verdict's headline."""
    from winnow.store.runs import record_run

    verdict = result.get("verdict") or {}
    headline = verdict.get("headline") if isinstance(verdict, dict) else ""
    if not headline and result.get("verdicts"):
        headline = "; ".join(result["verdicts"])
    target = params.get("test") or params.get("config") or params.get("table") or ""
    record_run(env.store_uri, {
        "command": command, "args": " ".join(sys.argv[1:]), "out": str(Path(params["out"]).resolve()) if params.get("out") else "",
        "target": Path(str(target)).name, "method": result.get("selector") or settings.selection.selector,
        "budget": result.get("budget") or str(settings.selection.budget), "model": settings.model.name,
        "headline": headline or "", "report": str(result.get("report") or ""), "minutes": round(minutes, 2)})


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """A rich table on a terminal; in full, as markdown, when the output is piped or written to a file (where a
    scheduled run's output is read, and rich would cut cells to 80 columns)."""
    if not rows:
        return
    if not sys.stdout.isatty():
        from winnow.reports.tables import markdown_table

        typer.echo(f"\n{title}\n\n{markdown_table(rows)}\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in rows[0]:
        table.add_column(str(col))
    for r in rows:
        table.add_row(*[str(v) for v in r.values()])
    Console().print(table)


def print_warnings(warnings: list[str]) -> None:
    """Warnings a run's numbers depend on (the guard removed the target's own data), in the last lines."""
    for w in warnings:
        typer.secho(f"warning: {w}", fg="yellow")


def report_error(message: str) -> None:
    """An expected error as one line: its message (naming the flag when a flag set the setting) and the log
    file that holds the traceback when there is one."""
    from flows.logs import LOG_FILE_ENV

    for key, flag in FLAGS.items():
        if message.startswith(f"{key}:"):
            message = f"{flag} ({key}):{message[len(key) + 1:]}"
    log = os.environ.get(LOG_FILE_ENV)
    if log and Path(log).is_file() and "Traceback" in Path(log).read_text(errors="replace"):
        message += f"  (traceback: {log})"
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
