"""``winnow export`` hands a run's subset and adapter on; ``winnow runs`` lists past runs from the store."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.app import app, environment, print_table

runs_app = typer.Typer(no_args_is_help=False, help="Past runs, from the store's run history.")
app.add_typer(runs_app, name="runs")


def _run_folder(ref: str, store_uri: str) -> tuple[Path, dict[str, Any]]:
    """A run folder given by path or by its id in the run history, and its metrics.json."""
    from winnow.errors import ConfigError
    from winnow.store.runs import find_run

    folder = Path(ref)
    if not (folder / "metrics.json").is_file():
        hit = find_run(store_uri, ref)
        if hit is None:
            raise ConfigError(f"RUN: {ref} is neither a run folder (with metrics.json) nor one run id of `winnow runs`")
        folder = Path(hit["out"])
    if not (folder / "metrics.json").is_file():
        raise ConfigError(f"RUN: {folder}/metrics.json does not exist (was the run folder moved or deleted?)")
    return folder, json.loads((folder / "metrics.json").read_text())


@app.command()
def export(
    run: Annotated[str, typer.Argument(help="a curate or retrain run folder, or its id from `winnow runs`, or an "
                                            "experiment folder")],
    out: Annotated[Path, typer.Option(help="folder to write the data set (and the adapter) to")],
    arm: Annotated[str, typer.Option(help="which arm's subset: selected, random, nice, ceiling, ...; in an "
                                          "experiment folder a cell, TARGET:METHOD:BUDGET:SEED")] = "selected",
    format_: Annotated[str, typer.Option("--format", help="jsonl, parquet, or hf (datasets.save_to_disk)")] = "jsonl",
    layout: Annotated[str, typer.Option(help="loaded (the pool's layout when it had one), messages, "
                                             "prompt_completion (TRL), alpaca or sharegpt")] = "loaded",
    adapter: Annotated[bool, typer.Option(help="also write the arm's adapter (PEFT save_pretrained)")] = True,
    merge: Annotated[bool, typer.Option(help="write a merged model instead of the adapter")] = False,
) -> None:
    """The subset an arm trained on, as a data set with a card (target, method, budget, verdict, provenance,
    decontamination), and its adapter through PEFT with a model card naming the base model.

    Example: winnow export runs/demo --out exports/demo --format hf --layout messages
    Example: winnow export runs/experiment-demo --arm tomi:gradients/round_robin:29:0 --out exports/tomi
    """
    from winnow import export as ex
    from winnow.data.loaders import load_records
    from winnow.models.loading import resolve_model_path

    env = environment(command="export")
    folder, a, info = _arm(run, arm, env.store_uri)
    if layout == "loaded":
        layout = _loaded_layout(env.store_uri, info.get("pool_table", ""))
    models = info.get("models") or {}
    meta = {"name": f"{folder.name}-{arm}".replace("/", "-").replace(":", "-"), "target": info.get("target"),
            "selector": a["selector"], "size": a["size"], "budget": info.get("budget"), "pool": info.get("pool"),
            "pool size": a["pool_size"], "removed by the decontamination guard": a.get("decontamination_removed"),
            "verdict": info.get("verdict"), "subset digest": a["digest"],
            "base model": models.get("trained"), "base fingerprint": models.get("trained_fingerprint"),
            "winnow": (info.get("versions") or {}).get("winnow"), "sources": a.get("sources")}
    records = [r.to_json() for r in load_records(a["subset"]).records]
    data = ex.write_dataset(records, out, format_, layout, ex.dataset_card(meta, layout, len(records)))
    typer.echo(f"{len(records)} examples ({arm}, layout {layout}) -> {data}")
    if (adapter or merge) and a.get("adapter"):
        base_id = ex.base_model_id(models.get("trained", ""))
        card = ex.model_card(base_id, models.get("trained_fingerprint", ""), meta, merge)
        where = ex.export_adapter(Path(a["adapter"]), out / ("merged" if merge else "adapter"),
                                  resolve_model_path(models.get("trained", "default"), env.model_cache), base_id, card, merge)
        typer.echo(f"{'merged model' if merge else 'adapter'} for {base_id} -> {where}")


def _arm(ref: str, arm: str, store_uri: str) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """One arm of a curate/retrain run folder (``--arm selected``), or one cell of an experiment folder
    (``--arm TARGET:METHOD:BUDGET:SEED``): its subset and adapter, and what the cards say about the run."""
    from winnow.errors import ConfigError

    folder = Path(ref)
    if (folder / "cells").is_dir() and not (folder / "metrics.json").is_file():
        cells = {f"{c['cell']['target']}:{c['cell']['method']}:{c['budget_size']}:{c['cell']['seed']}": c
                 for c in (json.loads(p.read_text()) for p in sorted((folder / "cells").glob("*.json")))
                 if c["cell"]["method"] != "zero_shot"}
        if arm not in cells:
            raise ConfigError(f"--arm: {folder} is an experiment; name a cell as TARGET:METHOD:BUDGET:SEED, one of "
                              f"{', '.join(sorted(cells)[:12]) or 'none'}{' ...' if len(cells) > 12 else ''}")
        c = cells[arm]
        if "subset" not in c:
            raise ConfigError(f"--arm: cell {arm} of {folder} was computed before cells recorded their subset and "
                              "adapter; delete its file under cells/ and re-run the experiment to recompute it")
        verdicts = folder / "verdicts.json"
        target = c["cell"]["target"]
        return folder, {**c, "size": c["budget_size"], "decontamination_removed": c.get("excluded")}, {
            "target": target, "budget": c["budget_size"], "pool": c.get("pool"), "pool_table": c.get("pool_table"),
            "models": c.get("models"),
            "verdict": json.loads(verdicts.read_text()).get(target) if verdicts.is_file() else None}
    folder, metrics = _run_folder(ref, store_uri)
    outputs = metrics.get("outputs", {})
    if arm not in outputs.get("arms", {}):
        raise ConfigError(f"--arm: {folder} has no arm {arm!r}; it has {', '.join(outputs.get('arms', {})) or 'none'}")
    return folder, outputs["arms"][arm], {
        "target": outputs.get("target"), "budget": metrics.get("budget"), "pool": outputs.get("pool"),
        "pool_table": outputs.get("pool_table", ""), "models": metrics.get("models"),
        "verdict": (metrics.get("verdict") or {}).get("headline"), "versions": metrics.get("versions")}


def _loaded_layout(store_uri: str, table: str) -> str:
    """The layout the pool's files were in when every file had the same exportable one, else messages."""
    from winnow.store.ingest import provenance

    from winnow.export import LAYOUTS

    seen = {k for e in (provenance(store_uri, table) if table else []) for k in (e.get("layouts") or {})}
    if len(seen) != 1:
        return "messages"
    (only,) = seen
    only = "prompt_completion" if only == "prompt_response" else only  # read as prompt/response: TRL's layout
    return only if only in LAYOUTS else "messages"


@runs_app.callback(invoke_without_command=True)
def runs(ctx: typer.Context, limit: Annotated[int, typer.Option(help="how many, newest first")] = 20) -> None:
    """Past runs: command, target, method, budget, the verdict's headline and when.

    Example: winnow runs; winnow runs show 3f2a9c1b
    """
    if ctx.invoked_subcommand is not None:
        return
    import datetime

    from winnow.store.runs import list_runs

    rows = [{"id": r["id"], "when": datetime.datetime.fromtimestamp(r["finished"]).strftime("%Y-%m-%d %H:%M"),
             "command": r["command"], "target": r["target"], "method": r["method"], "budget": r["budget"],
             "verdict": r["headline"], "out": r["out"]} for r in list_runs(environment(command="runs").store_uri)[:limit]]
    if not rows:
        typer.echo("no runs recorded yet in this store")
    print_table("runs (newest first)", rows)


@runs_app.command()
def show(run_id: Annotated[str, typer.Argument(help="a run id (or a unique prefix) from `winnow runs`")]) -> None:
    """One run: everything the history holds, and its report's path.

    Example: winnow runs show 3f2a9c1b
    """
    from winnow.errors import ConfigError
    from winnow.store.runs import find_run

    hit = find_run(environment(command="runs").store_uri, run_id)
    if hit is None:
        raise ConfigError(f"RUN_ID: no single run matches {run_id!r} (see `winnow runs`)")
    for k, v in hit.items():
        typer.echo(f"{k}: {v}")

