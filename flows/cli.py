"""The ``winnow`` command line. Prefect is imported only after the environment is set (see flows.env)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows.env import EnvSettings, apply_environment

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Winnow: choose the data to fine-tune a language model on.")

SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override a setting: section.key=value "
                                                                   "(repeatable), e.g. features.proj_dim=1024")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML settings file (see configs/)")]


def _env() -> EnvSettings:
    env = EnvSettings()
    apply_environment(env)
    return env


def _fail(e: Exception) -> None:
    typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def curate(
    pool: Annotated[str, typer.Option(help="candidate pool: .jsonl, .parquet, datasets dir or hub name")],
    query: Annotated[str, typer.Option(help="a few examples of the target task")],
    test: Annotated[str, typer.Option(help="held-out examples of the target task, for evaluation")],
    out: Annotated[Path, typer.Option(help="run folder for report.md, metrics.json, selected.jsonl")],
    budget: Annotated[Optional[str], typer.Option(help="'5%', '0.05' (share) or '200' (examples)")] = None,
    model: Annotated[Optional[str], typer.Option(help="causal-LM directory or hub id (default: SmolLM2-135M)")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Warm up, featurise (LESS gradients on Dask), select by round-robin, fine-tune selected and random
    subsets of the same size, evaluate base / random / selected, and write the report."""
    from winnow.errors import WinnowError
    from winnow.settings import load_settings

    env = _env()
    overrides = list(set_ or [])
    if budget is not None:
        b = budget.strip()
        overrides.append(f"selection.budget={float(b[:-1]) / 100 if b.endswith('%') else b}")
    overrides.append(f"model.name={model or env.model}")
    try:
        settings = load_settings(str(config) if config else None, overrides)
    except WinnowError as e:
        _fail(e)
    from flows.curate import curate as curate_flow
    from flows.runtime import task_runner, versions

    t0 = time.time()
    try:
        result = curate_flow.with_options(task_runner=task_runner(env))(
            pool=pool, query=query, test=test, out=str(out), settings=settings.model_dump(mode="json"),
            store_uri=env.store_uri, work_dir=str(env.home.resolve()), worker_threads=env.threads_per_worker,
            versions=versions())
    except WinnowError as e:
        _fail(e)
    _print_results(result, time.time() - t0)


def _print_results(result: dict, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"test set, budget {result['budget']} examples ({seconds / 60:.1f} min)")
    for col in ("model", "exact match", "response loss"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for name, m in result["results"].items():
        table.add_row(name, f"{m['exact_match']:.3f}", f"{m['response_loss']:.3f}")
    Console().print(table)
    typer.echo(f"report: {result['report']}")


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="folder for pool.jsonl, query.jsonl, test.jsonl")] = Path("data/demo"),
    wheel: Annotated[Optional[Path], typer.Option(help="the evals wheel (pip download --no-deps evals)")] = None,
    per_source: Annotated[int, typer.Option(help="examples per pool eval")] = 10,
    seed: int = 0,
) -> None:
    """Build the demo pool (28 OpenAI Evals tasks) and a held-out target (sarcasm) from the evals wheel."""
    from winnow.data.evals_registry import build_demo_data

    if wheel is None:
        found = sorted(Path(".cache/wheels").glob("evals-*.whl"))
        if not found:
            _fail(FileNotFoundError("no evals wheel: run `pip download --no-deps evals==3.0.1.post1 "
                                    "-d .cache/wheels` or pass --wheel"))
        wheel = found[-1]
    summary = build_demo_data(wheel, out, per_source=per_source, seed=seed)
    typer.echo(json.dumps({k: summary[k] for k in ("target", "pool", "query", "test")}))


@app.command("prepare-model")
def prepare_model(model: Annotated[Optional[str], typer.Option(help="model setting to resolve")] = None) -> None:
    """Convert the default GGUF model once and cache it (later runs reload it in a fraction of a second)."""
    from winnow.models.loading import resolve_model_path

    env = _env()
    typer.echo(resolve_model_path(model or env.model, env.model_cache))


def main() -> None:
    app(prog_name="winnow")


if __name__ == "__main__":
    sys.exit(main())
