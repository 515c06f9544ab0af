"""Commands that run the product as a service and look after its inputs: ingest, retrain, serve, server,
demo-data, prepare-model and settings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows.cli.app import (FLAGS, ConfigOpt, ModelOpt, SetOpt, app, environment, launch, prepare, print_table, resolve,
                           start_private_server)


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="data files or directories (their .jsonl/.json/.csv/.tsv/"
                                                    ".parquet files, .gz/.zst too)")],
    table: Annotated[str, typer.Option("--pool", "--table", help="the pool table (dataset id) to append to; "
                                                                  "--table is the older spelling")] = "pool",
    format_: Annotated[Optional[str], typer.Option("--format", help="force a layout: messages, prompt_response, "
                                                                    "alpaca, sharegpt, qa, text (default: detect)")] = None,
    map_: Annotated[Optional[str], typer.Option("--map", help="your columns: prompt=question,response=answer")] = None,
    config: ConfigOpt = None, set_: SetOpt = None,
) -> None:
    """Append new examples to a pool table (each file once, by content hash; each record once, by id) and
    emit `winnow.pool.updated`, which starts the retrain deployment when `winnow serve` runs.

    Example: winnow ingest inbox/2026-12-06.jsonl.gz --pool pool --map prompt=question,response=answer
    """
    overrides = list(set_ or [])
    if format_:
        FLAGS["data.format"] = "--format"
        overrides.append(f"data.format={format_}")
    env = environment(command="ingest")
    data = resolve(env, config, overrides).data
    if map_:
        from winnow.data.layouts import parse_map

        data = data.model_copy(update={"map": parse_map(map_)})
    start_private_server(env)  # the same server mode as every other command
    from flows.ingest import ingest_flow

    summary = ingest_flow(paths=paths, table=table, store_uri=env.store_uri, data=data.model_dump())
    for f in summary["files_read"]:
        typer.echo(f"{f['file']}: {f['layouts'] or 'already ingested'} ({f['read as']}; default source / task: "
                   f"{f['default source / task']})")
    typer.echo(f"{summary['in']} records read: {summary['used']} used, {summary['quarantined']} quarantined")
    if summary["quarantined"]:
        typer.echo("  " + "; ".join(f"{k} x{n}" for k, n in list(summary["reasons"].items())[:5]))
        for line in summary["first_quarantined"]:
            typer.echo(f"  {line}")
        typer.echo(f"  all of them: {summary['quarantine_file']}")
    typer.echo(f"{summary['new_rows']} new rows in {table} from {summary['files']} file(s); the table has "
               f"{summary['table_rows']} rows (version {summary['version']})")


@app.command()
def retrain(
    query: Annotated[str, typer.Option(help="a few examples of the target task")],
    test: Annotated[str, typer.Option(help="held-out examples of the target task")],
    out: Annotated[Path, typer.Option(help="folder for one report per pool version")],
    table: Annotated[str, typer.Option("--pool", "--table", help="the pool table (filled by `winnow ingest`); "
                                                                  "--table is the older spelling")] = "pool",
    min_new_rows: Annotated[int, typer.Option(help="skip unless this many rows arrived since the last retrain")] = 0,
    model: ModelOpt = None, config: ConfigOpt = None, set_: SetOpt = None,
) -> None:
    """Run the retrain flow once by hand (the deployments run it on new data and weekly).

    Example: winnow retrain --pool pool --query data/demo/query.jsonl --test data/demo/test.jsonl --out runs/retrain
    """
    env, settings = prepare(config, list(set_ or []), model, out, "retrain", query=query, test=test)
    from flows.retrain import retrain as retrain_flow

    result, minutes = launch(retrain_flow, env, settings, pool_table=table, query=query, test=test, out=str(out),
                             min_new_rows=min_new_rows)
    if result["skipped"]:
        typer.echo(f"{result['new_rows']} new rows since the last retrain, fewer than {min_new_rows}: nothing to do")
        return
    print_table(f"retrain of {table} ({result['table_rows']} rows, {minutes:.1f} min)",
                [{"model": k, **{n: f"{v:.3f}" for n, v in m.items()}} for k, m in result["results"].items()])
    typer.echo(f"report: {result['report']}")


@app.command()
def serve(
    deployments: Annotated[Path, typer.Option(help="deployment declarations")] = Path("infra/prefect.yaml"),
) -> None:
    """Register the deployments on the Prefect server and run them from this process: schedules (weekly
    curation, the inbox every minute), the retrain trigger, and runs started from the UI.

    Example: PREFECT_API_URL=http://127.0.0.1:4200/api winnow serve
    """
    from winnow.errors import ConfigError

    env = environment(command="serve")
    if not env.prefect_api_url:
        raise ConfigError("PREFECT_API_URL is not set: deployments need a Prefect server. Start one with "
                          "`winnow server` (or `make ui`) and set PREFECT_API_URL=http://127.0.0.1:4200/api")
    from flows.runtime import preflight

    preflight(env)
    from flows.deploy import runner_deployments

    deps = runner_deployments(deployments)
    from prefect import serve as prefect_serve

    prefect_serve(*deps)


@app.command()
def server(
    host: Annotated[str, typer.Option(help="bind address; keep 127.0.0.1 unless a proxy with auth is in front")] = "127.0.0.1",
    port: int = 4200,
) -> None:
    """Start a local Prefect server and its UI (state in WINNOW_HOME/prefect). Point Winnow at it with
    PREFECT_API_URL=http://127.0.0.1:4200/api.

    Example: winnow server --port 4200
    """
    environment(command="server")
    os.environ.setdefault("PREFECT_UI_API_URL", f"http://{host}:{port}/api")  # the UI's calls go to this server
    typer.echo(f"Prefect UI: http://{host}:{port}  (API: http://{host}:{port}/api; PREFECT_HOME={os.environ['PREFECT_HOME']})")
    raise typer.Exit(subprocess.call([sys.executable, "-m", "prefect", "server", "start", "--host", host,
                                      "--port", str(port)]))


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="folder for pool.jsonl, query.jsonl, test.jsonl")] = Path("data/demo"),
    wheel: Annotated[Optional[Path], typer.Option(help="the evals wheel (pip download --no-deps evals)")] = None,
    per_source: Annotated[int, typer.Option(help="examples per pool eval")] = 10,
    target: Annotated[Optional[str], typer.Option(
        help="the held-out target eval, a registry file (default theory_of_mind/tomi/test.jsonl); taken out of "
             "the pool")] = None,
    add: Annotated[Optional[list[str]], typer.Option(
        help="another registry eval file for the pool, beside the 29 (repeatable), e.g. a sibling of the target "
             "that a selector should find")] = None,
    target_in_pool: Annotated[int, typer.Option(
        help="put this many other items of the target eval (never a query or test item) into the pool: "
             "in-domain data a selector should find")] = 0,
    val_share: Annotated[float, typer.Option(
        help="carve this share of the test items (by id) into val.jsonl, the validation split an experiment's "
             "planted recall and subset utility read; test.jsonl keeps the rest")] = 0.0,
    seed: int = 0,
) -> None:
    """Build the demo pool (29 OpenAI Evals tasks) and a held-out target (ToMi) from the evals wheel.

    Example: winnow demo-data --wheel .cache/wheels/evals-3.0.1.post1-py3-none-any.whl --out data/demo
    """
    from winnow.data.evals_registry import DEFAULT_POOL, DEFAULT_TARGET, build_demo_data
    from winnow.errors import DataFormatError

    if wheel is None:
        found = sorted(Path(".cache/wheels").glob("evals-*.whl"))
        if not found:
            raise DataFormatError(".cache/wheels", "no evals wheel: run `pip download --no-deps "
                                  "evals==3.0.1.post1 -d .cache/wheels` or pass --wheel")
        wheel = found[-1]
    summary = build_demo_data(wheel, out, target=target or DEFAULT_TARGET, per_source=per_source, seed=seed,
                              pool=DEFAULT_POOL + tuple(a for a in add or () if a not in DEFAULT_POOL),
                              target_in_pool=target_in_pool)
    if val_share:  # the one validation split by id, as curate --validate and tune carve it
        from tasks.data import validation_split_task

        split = validation_split_task.fn(str(out / "test.jsonl"), str(out), val_share, seed)
        summary = {**summary, "val": split.n_val, "test": split.n_test}
    typer.echo(json.dumps({k: summary[k] for k in ("target", "pool", "query", "val", "test") if k in summary}))


@app.command("prepare-model")
def prepare_model(model: ModelOpt = None) -> None:
    """Convert the default GGUF model once and cache it (later runs reload it in a fraction of a second); check
    that a named model can be opened.

    Example: winnow prepare-model --model ./models/my-llama
    """
    from winnow.fingerprint import model_fingerprint
    from winnow.models.loading import check_model_name, resolve_model_path

    env = environment(command="prepare-model")
    check_model_name(model or env.model, offline=env.offline, key="--model")
    path = resolve_model_path(model or env.model, env.model_cache)
    typer.echo(f"fingerprint (content): {model_fingerprint(path, env.model_cache)}")
    typer.echo(path)  # last, alone: what a script reads


@app.command()
def settings(
    show: Annotated[Optional[str], typer.Option(help="print one key's resolved value (e.g. model.name)")] = None,
    config: ConfigOpt = None, set_: SetOpt = None, model: ModelOpt = None,
) -> None:
    """List every setting with its type, default and help; with --show, one key's value as this command line
    resolves it (defaults < WINNOW_* < --config < --set < --model).

    Example: winnow settings --config configs/demo.yaml --show selection.budget
    """
    from flows.cli.app import model_flag
    from winnow.settings import describe_settings, lookup

    if show is None and config is None and not set_:
        print_table("settings (--set section.key=value)", describe_settings())
        return
    resolved = resolve(environment(command="settings"), config, [*(set_ or []), *model_flag(model)])
    value = lookup(resolved, show) if show else resolved.model_dump(mode="json")
    typer.echo(value if isinstance(value, str) else json.dumps(value, indent=1, default=str))

