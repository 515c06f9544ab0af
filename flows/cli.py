"""The ``winnow`` command line. Prefect is imported only after the environment is set (see flows.env)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from flows.env import EnvSettings, apply_environment, start_private_server

if TYPE_CHECKING:
    from winnow.settings import WinnowSettings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Winnow: choose the data to fine-tune a language model on.")

SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override a setting: section.key=value "
                                                                   "(repeatable), e.g. features.proj_dim=1024")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML settings file (see configs/)")]


# Setting keys set by a flag of this command, so an error about the setting names the flag the user typed.
_FLAGS: dict[str, str] = {}


def _env(log_dir: Optional[Path] = None, command: str = "winnow") -> EnvSettings:
    """Environment settings, exported for Prefect and the workers, and this command's log file: the run
    folder's ``winnow.log`` when the command has one, else ``WINNOW_HOME/logs/<command>.log``."""
    import os

    from flows.logs import LOG_FILE_ENV

    env = EnvSettings()
    apply_environment(env)
    if LOG_FILE_ENV not in os.environ:  # one log per command run; the workers it starts append to it
        log = ((log_dir / "winnow.log") if log_dir else env.home / "logs" / f"{command}.log").resolve()
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"winnow {' '.join(sys.argv[1:])}\n")
        os.environ[LOG_FILE_ENV] = str(log)
    return env


def _budget(text: str, key: str = "selection.budget") -> int | float:
    """Every command's ``--budget``: ``200`` is a count, ``5%`` or ``0.05`` a share, ``1`` one example, ``100%``
    or ``1.0`` the whole pool (winnow.budget); later errors about ``key`` name the flag."""
    from winnow.budget import parse_budget

    _FLAGS[key] = "--budget"
    return parse_budget(text, name="--budget")


def _budget_overrides(budget: Optional[str], key: str = "selection.budget") -> list[str]:
    return [] if budget is None else [f"{key}={_budget(budget, key)!r}"]


def _seed_overrides(env: EnvSettings) -> list[str]:
    """WINNOW_SEED seeds every phase unless a --set names that phase's seed (later overrides win)."""
    keys = ("warmup.train.seed", "features.seed", "selection.seed", "finetune.seed")
    return [f"{k}={env.seed}" for k in keys] if env.seed else []


def _model_flag(model: Optional[str]) -> list[str]:
    """``--model`` is the last word on the model; without it the config file's ``model.name`` stands (a named
    model was once silently replaced by the default here), and WINNOW_MODEL only fills an unnamed one."""
    if model is None:
        return []
    _FLAGS["model.name"] = "--model"
    return [f"model.name={model}"]


def check_models(settings: "WinnowSettings", env: EnvSettings) -> None:
    """Every model a run names, checked before the server starts or anything is converted."""
    from winnow.models.loading import check_model_name

    check_model_name(settings.model.name, offline=env.offline)
    check_model_name(settings.finetune.model, offline=env.offline, key="finetune.model")


def _prepare(config: Optional[Path], overrides: list[str], model: Optional[str], log_dir: Optional[Path] = None,
             command: str = "winnow") -> tuple[EnvSettings, "WinnowSettings"]:
    """Environment and validated settings (seeds from WINNOW_SEED first, then --set, then the command's own
    options), and a pre-flight check of any configured server: every problem reported before work starts."""
    from winnow.settings import load_settings

    env = _env(log_dir, command)
    settings = load_settings(str(config) if config else None, [*_seed_overrides(env), *overrides, *_model_flag(model)],
                             defaults={"model": {"name": env.model}})
    check_models(settings, env)
    start_private_server(env)  # before Prefect is imported (flows.runtime imports it)
    from flows.runtime import preflight

    preflight(env)
    return env, settings


def _report(e: Exception) -> None:
    """An expected error as one line: its message (naming the flag when a flag set the setting) and the log
    file that holds the traceback when there is one."""
    import os

    from flows.logs import LOG_FILE_ENV

    message = str(e)
    for key, flag in _FLAGS.items():
        if message.startswith(f"{key}:"):
            message = f"{flag} ({key}):{message[len(key) + 1:]}"
    log = os.environ.get(LOG_FILE_ENV)
    if log and Path(log).is_file() and "Traceback" in Path(log).read_text(errors="replace"):
        message += f"  (traceback: {log})"
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


@app.command()
def curate(
    pool: Annotated[str, typer.Option(help="candidate pool: .jsonl, .parquet, datasets dir or hub name")],
    query: Annotated[str, typer.Option(help="a few examples of the target task")],
    test: Annotated[str, typer.Option(help="held-out examples of the target task, for evaluation")],
    out: Annotated[Path, typer.Option(help="run folder for report.md, metrics.json, selected.jsonl")],
    budget: Annotated[Optional[str], typer.Option(help="'5%', '0.05' (share) or '200' (examples)")] = None,
    model: Annotated[Optional[str], typer.Option(help="causal-LM directory or hub id (default: SmolLM2-135M)")] = None,
    target_metric: Annotated[Optional[str], typer.Option(help="select (NICE) and evaluate for a metric: exact_match, "
                                                              "numeric_match, token_f1, includes, fuzzy_match, code, "
                                                              "reward-model, judge, module:fn")] = None,
    rewarm: Annotated[bool, typer.Option("--rewarm", help="start a new feature space (a new warm-up) instead of "
                                                          "keeping the pool's; every row is featurised again")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Warm up, featurise (LESS gradients on Dask), select by round-robin, fine-tune selected and random
    subsets of the same size, evaluate base / random / selected, and write the report. With --target-metric,
    also select with NICE's policy-gradient query side and compare all three. --pool may name a store table
    (e.g. `pool`, filled by `winnow ingest`); a grown pool keeps its feature space, so only new rows are
    featurised."""
    # --target-metric is both NICE's reward and the test metric; an explicit --set eval.metric=... still wins
    target = [f"nice.metric={target_metric}", f"eval.metric={target_metric}"] if target_metric else []
    overrides = [*target, *(set_ or []), *_budget_overrides(budget)]
    env, settings = _prepare(config, overrides, model, out, "curate")
    from flows.curate import curate as curate_flow
    from flows.runtime import task_runner, versions

    t0 = time.time()
    result = curate_flow.with_options(task_runner=task_runner(env))(
        pool=pool, query=query, test=test, out=str(out), settings=settings.model_dump(mode="json"),
        store_uri=env.store_uri, work_dir=str(env.home.resolve()), worker_threads=env.threads_per_worker,
        versions=versions(), rewarm=rewarm)
    _print_results(result, time.time() - t0)


def _print_table(title: str, rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in rows[0]:
        table.add_column(str(col))
    for r in rows:
        table.add_row(*[str(v) for v in r.values()])
    Console().print(table)


def _print_results(result: dict, seconds: float) -> None:
    _print_table(f"test set, budget {result['budget']} examples ({seconds / 60:.1f} min)",
                 [{"model": name, **{k: f"{v:.3f}" for k, v in m.items()}} for name, m in result["results"].items()])
    typer.echo(f"report: {result['report']}")


@app.command()
def plan(
    pool: Annotated[str, typer.Option(help="candidate pool: .jsonl, .parquet, datasets dir or hub name")],
    query: Annotated[Optional[str], typer.Option(help="the query set (its size is counted)")] = None,
    test: Annotated[Optional[str], typer.Option(help="the test set (a few of its items are evaluated)")] = None,
    budget: Annotated[Optional[str], typer.Option(help="'5%', '0.05' (share) or '200' (examples)")] = None,
    model: Annotated[Optional[str], typer.Option(help="causal-LM directory or hub id (default: SmolLM2-135M)")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Dask workers the run will have (default "
                                                        "WINNOW_DASK_WORKERS)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="write the plan as JSON here")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Before a curation: probe this machine on a few of the pool's real examples (model load, LoRA steps,
    gradient features, the prefilter's forward pass, evaluation, a store write) and print the predicted wall time
    and peak memory of each phase of the full run, and what the cheaper options would cost."""
    import random
    import tempfile

    from tasks.plan import IMPORT_S
    from winnow.data.loaders import load_records
    from winnow.models.loading import load_tokenizer
    from winnow.plan import human, plan as plan_run, probe, sample_lengths
    from winnow.recipe import curation

    env = _env(None, "plan")
    from winnow.settings import load_settings

    settings = load_settings(str(config) if config else None,
                             [*_seed_overrides(env), *(set_ or []), *_budget_overrides(budget), *_model_flag(model)],
                             defaults={"model": {"name": env.model}})
    from winnow.models.loading import resolve_model_path

    check_models(settings, env)
    cfg = settings.model_copy(update={"model": settings.model.model_copy(update={
        "num_threads": env.threads_per_worker})})  # the probe runs as one worker would
    model_path = resolve_model_path(cfg.model.name, env.model_cache)
    train_path = resolve_model_path(cfg.finetune.model, env.model_cache) if cfg.finetune.model else ""
    records = load_records(pool, layout=cfg.data.format, column_map=cfg.data.map).records
    queries = load_records(query, labelled=False).records if query else []
    tests = load_records(test).records if test else []
    unlabelled = sum(not r.labelled for r in queries)
    arms = len(curation(pool, query or "", test or "", cfg, unlabelled=unlabelled).arms)
    typer.echo(f"probing {len(records)} pool examples' sample on {env.threads_per_worker} thread(s)…")
    sample = records if len(records) <= 1000 else random.Random(0).sample(records, 1000)
    with tempfile.TemporaryDirectory(prefix="winnow-plan-") as tmp:
        rates = probe(model_path, cfg, sample, tests or sample, work_dir=tmp, train_model_path=train_path,
                      import_s=IMPORT_S)
    lengths = sample_lengths(load_tokenizer(model_path, trust_remote_code=cfg.model.trust_remote_code), sample,
                             cfg.model.max_length)
    result = plan_run(rates, lengths, cfg, pool_rows=len(records), query_rows=len(queries),
                      test_rows=len(tests) or 1, arms=arms, workers=workers or env.dask_workers)
    w = result["workload"]
    _print_table(f"predicted: {w['pool_rows']} pool examples (mean {w['mean_tokens']:.0f} tokens), budget "
                 f"{w['budget']}, {w['workers']} workers, {result['rates']['device']}",
                 [{"phase": k, "wall": human(v["seconds"]), "peak memory": f"{v['peak_mb']:.0f} MB"
                   if v.get("peak_mb") else "–", "what": v["what"]} for k, v in result["phases"].items()])
    typer.echo(f"total: {human(result['total'])} (the warm-up is part of features)")
    _print_table("cheaper options", [{"option": a["option"], "predicted": human(a["seconds"]),
                                      "vs configured": a["vs configured"], "set": a["set"]}
                                     for a in result["alternatives"]])
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        typer.echo(f"plan: {out}")


@app.command()
def compare(
    pool: Annotated[str, typer.Option(help="candidate pool (any supported format)")],
    query: Annotated[str, typer.Option(help="a few examples of the target task")],
    out: Annotated[Path, typer.Option(help="folder for compare.md/csv and every subset")],
    representation: Annotated[Optional[list[str]], typer.Option(help="gradients, hidden, embedding (repeatable; "
                                                                     "default all)")] = None,
    selector: Annotated[Optional[list[str]], typer.Option(help="rr, dg, subtask, uot, knn-uniform, knn-kde, random "
                                                               "(repeatable; default all)")] = None,
    budget: Annotated[Optional[str], typer.Option(help="'5%', '0.05' or '200'")] = None,
    model: Annotated[Optional[str], typer.Option(help="causal-LM directory or hub id")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Run several representation × selector pairs over one store and publish a table (sizes, sources
    picked, distance of each subset to the query set)."""
    from winnow.selection.targeted import canonical_selector

    env, settings = _prepare(config, [*(set_ or []), *_budget_overrides(budget)], model, out, "compare")
    sels = [canonical_selector(s) for s in selector] if selector else None
    from flows.compare import compare as compare_flow
    from flows.runtime import task_runner

    rows = compare_flow.with_options(task_runner=task_runner(env))(
        pool=pool, query=query, out=str(out), settings=settings.model_dump(mode="json"), store_uri=env.store_uri,
        work_dir=str(env.home.resolve()), representations=representation, selectors=sels,
        worker_threads=env.threads_per_worker)
    _print_table("representation × selector", rows)


@app.command()
def select(
    pool_features: Annotated[str, typer.Option(help="pool feature table in the store (e.g. grads_adam__...)")],
    query_features: Annotated[str, typer.Option(help="query feature table in the store")],
    out: Annotated[Path, typer.Option(help="folder for the subset and its ordering")],
    selector: Annotated[str, typer.Option(help="rr, dg, subtask, uot, knn-uniform, knn-kde, random, all")] = "rr",
    budget: Annotated[str, typer.Option(help="'5%', '0.05' or '200'")] = "5%",
    seed: int = 0,
) -> None:
    """Select from an existing store: no model is loaded, only stored features are read."""
    from winnow.selection.subset import select_subset
    from winnow.selection.targeted import canonical_selector

    env = _env(out, "select")
    value = _budget(budget)
    name = canonical_selector(selector)
    sub = select_subset(env.store_uri, query_features, pool_features, selector=name, seed=seed, budget=value,
                        out_dir=out, name=name)
    d = sub["distances"]
    typer.echo(f"{sub['budget']} of {sub['pool_size']} examples by {sub['selector']}: distance to queries nearest "
               f"{d['nearest']:.4f}, transport {d['transport']:.4f} -> {sub['path']}")


@app.command()
def mixture(
    pool: Annotated[str, typer.Option(help="the pool; its 'source' (or --set mixture.domain_key=task) makes the domains")],
    test: Annotated[str, typer.Option(help="the unseen target's test set: the chosen mixture is scored on it once")],
    out: Annotated[Path, typer.Option(help="folder for mixture.md and plots")],
    val: Annotated[Optional[str], typer.Option(help="validation set that scores the trials (default: a share of "
                                                    "--test by id, mixture.val_share; the rest stays unseen)")] = None,
    study: Annotated[str, typer.Option(help="Optuna study name; re-running resumes it")] = "mixture",
    feedback: Annotated[str, typer.Option(help="auto: score on the validation split; external: wait for `winnow feedback`")] = "auto",
    budget: Annotated[Optional[str], typer.Option(help="examples per trial: '10%', '0.1' or '28'")] = None,
    model: Annotated[Optional[str], typer.Option(help="causal-LM directory or hub id")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """TaskPGM proportions from proxy-model affinities, then DUET's Bayesian search over proportions, warm
    started with uniform, size-proportional and TaskPGM mixtures."""
    from winnow.errors import ConfigError

    if feedback not in ("auto", "external"):
        raise ConfigError(f"--feedback: must be auto or external, got {feedback!r}")
    env, settings = _prepare(config, [*(set_ or []), *_budget_overrides(budget, "mixture.budget")], model, out,
                             "mixture")
    from flows.mixture import mixture as mixture_flow
    from flows.runtime import task_runner

    result = mixture_flow.with_options(task_runner=task_runner(env))(
        pool=pool, test=test, out=str(out), settings=settings.model_dump(mode="json"), store_uri=env.store_uri,
        work_dir=str(env.home.resolve()), optuna_storage=env.optuna_path, study=study, feedback=feedback,
        worker_threads=env.threads_per_worker, val=val or "")
    _print_table(f"mixture search '{study}': trials (validation split)",
                 [{"trial": t["trial"], "start": t["start"], "score": f"{t['score']:.4f}"} for t in result["trials"]])
    _print_table("test split (unseen by the search)",
                 [{"mixture": k, **{n: f"{v:.3f}" for n, v in m.items()}} for k, m in result["test"].items()])
    typer.echo(f"report: {result['report']}")


@app.command()
def feedback(
    study: Annotated[str, typer.Option(help="the study the mixture flow runs")],
    trial: Annotated[int, typer.Option(help="the trial number shown by the flow")],
    score: Annotated[float, typer.Option(help="the trial's score (higher is better), e.g. a user rating")],
) -> None:
    """Post an external score for a waiting mixture trial; the flow continues by itself."""
    from winnow.mixture.duet import post_feedback

    env = _env(command="feedback")
    post_feedback(env.optuna_path, study, trial, score)
    typer.echo(f"trial {trial} of {study}: score {score} recorded")


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="data files or directories (their .jsonl/.json/.parquet files, "
                                                    ".gz/.zst too)")],
    table: Annotated[str, typer.Option(help="pool table to append to")] = "pool",
    format_: Annotated[Optional[str], typer.Option("--format", help="force a layout: messages, prompt_response, "
                                                                    "alpaca, sharegpt, qa (default: detect)")] = None,
    map_: Annotated[Optional[str], typer.Option("--map", help="your columns: prompt=question,response=answer")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Append new examples to a pool table (each file once, by content hash; each record once, by id) and
    emit `winnow.pool.updated`, which starts the retrain deployment when `winnow serve` runs."""
    from winnow.settings import load_settings

    env = _env(command="ingest")
    overrides = list(set_ or [])
    if format_:
        _FLAGS["data.format"] = "--format"
        overrides.append(f"data.format={format_}")
    data = load_settings(str(config) if config else None, overrides).data
    if map_:
        from winnow.data.layouts import parse_map

        data = data.model_copy(update={"map": parse_map(map_)})
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
    table: Annotated[str, typer.Option(help="the pool table (filled by `winnow ingest`)")] = "pool",
    min_new_rows: Annotated[int, typer.Option(help="skip unless this many rows arrived since the last retrain")] = 0,
    model: Annotated[Optional[str], typer.Option(help="causal-LM directory or hub id")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Run the retrain flow once by hand (the deployments run it on new data and weekly)."""
    env, settings = _prepare(config, list(set_ or []), model, out, "retrain")
    from flows.retrain import retrain as retrain_flow

    t0 = time.time()
    result = retrain_flow(pool_table=table, query=query, test=test, out=str(out),
                          settings=settings.model_dump(mode="json"), min_new_rows=min_new_rows,
                          store_uri=env.store_uri, work_dir=str(env.home.resolve()),
                          worker_threads=env.threads_per_worker)
    if result["skipped"]:
        typer.echo(f"{result['new_rows']} new rows since the last retrain, fewer than {min_new_rows}: nothing to do")
        return
    _print_table(f"retrain of {table} ({result['table_rows']} rows, {time.time() - t0:.0f} s)",
                 [{"model": k, **{n: f"{v:.3f}" for n, v in m.items()}} for k, m in result["results"].items()])
    typer.echo(f"report: {result['report']}")


@app.command()
def serve(
    deployments: Annotated[Path, typer.Option(help="deployment declarations")] = Path("infra/prefect.yaml"),
) -> None:
    """Register the deployments on the Prefect server and run them from this process: schedules (weekly
    curation, the inbox every minute), the retrain trigger, and runs started from the UI."""
    from winnow.errors import ConfigError

    env = _env(command="serve")
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
    PREFECT_API_URL=http://127.0.0.1:4200/api."""
    import os
    import subprocess

    _env(command="server")
    os.environ.setdefault("PREFECT_UI_API_URL", f"http://{host}:{port}/api")  # the UI's calls go to this server
    typer.echo(f"Prefect UI: http://{host}:{port}  (API: http://{host}:{port}/api; PREFECT_HOME={os.environ['PREFECT_HOME']})")
    raise typer.Exit(subprocess.call([sys.executable, "-m", "prefect", "server", "start", "--host", host,
                                      "--port", str(port)]))


@app.command()
def experiment(
    config: Annotated[Path, typer.Argument(help="experiment YAML (see configs/experiment-demo.yaml)")],
    out: Annotated[Optional[Path], typer.Option(help="results folder (default runs/experiment-<name>)")] = None,
    budget: Annotated[Optional[list[str]], typer.Option(help="replace the grid's budgets: '5%', '0.05' or '14' "
                                                             "(repeatable)")] = None,
    model: Annotated[Optional[str], typer.Option(help="causal-LM directory or hub id")] = None,
    set_: SetOpt = None,
) -> None:
    """Selection vs random on your targets: representations × selectors × budgets × seeds, plus zero-shot,
    random and full-data baselines and the distance-quantile experiment; tables, plots and a report.
    Finished cells are reused, so re-running (or adding a seed or budget) computes only what is missing."""
    from winnow.experiment.grid import load_experiment

    exp = load_experiment(str(config))
    budgets = [_budget(b, "budgets") for b in budget] if budget else None
    out = out or Path("runs") / f"experiment-{exp.name}"
    env, settings = _prepare(Path(exp.settings) if exp.settings else None, [*exp.overrides, *(set_ or [])], model,
                             out, "experiment")
    from flows.experiment import experiment as experiment_flow
    from flows.runtime import task_runner

    t0 = time.time()
    result = experiment_flow.with_options(task_runner=task_runner(env))(
        config=str(config), out=str(out), budgets=budgets, settings=settings.model_dump(mode="json"),
        store_uri=env.store_uri, work_dir=str(env.home.resolve()), worker_threads=env.threads_per_worker)
    for name, rows in result["paired"].items():
        if rows:
            _print_table(f"{name}: method − random (same budget, seed)", rows)
    typer.echo(f"{result['cells']} cells ({result['computed']} computed) in {(time.time() - t0) / 60:.1f} min; "
               f"report: {result['report']}")


@app.command()
def tune(
    pool: Annotated[str, typer.Option(help="candidate pool: a file or a store table name")],
    query: Annotated[str, typer.Option(help="a few examples of the target task (what selection aims at)")],
    test: Annotated[str, typer.Option(help="test split: scores only the best configuration, once, beside random")],
    out: Annotated[Path, typer.Option(help="folder for tune.md, trials.json, best.yaml and plots")],
    val: Annotated[Optional[str], typer.Option(help="validation split that scores every trial and its pruning "
                                                    "(default: tune.val_share of --test by id)")] = None,
    trials: Annotated[Optional[int], typer.Option(help="finished trials to run to (default tune.trials)")] = None,
    study: Annotated[str, typer.Option(help="Optuna study name; re-running resumes it, and several processes may "
                                            "run it at once")] = "tune",
    model: Annotated[Optional[str], typer.Option(help="causal-LM directory or hub id")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """An Optuna study over how to select and train (tune.space: representation, selector, budget, learning
    rate, epochs, ...): each trial selects, fine-tunes with a validation check per epoch (pruned early when it
    cannot win) and is scored on --val; the best configuration is then run with tune.final_seeds and scored
    once on --test beside random at the same budget."""
    if trials is not None and trials < 1:
        from winnow.errors import ConfigError

        raise ConfigError(f"--trials: must be at least 1, got {trials}")
    env, settings = _prepare(config, list(set_ or []), model, out, "tune")
    from flows.runtime import task_runner
    from flows.tune import tune as tune_flow

    t0 = time.time()
    result = tune_flow.with_options(task_runner=task_runner(env))(
        pool=pool, query=query, test=test, out=str(out), settings=settings.model_dump(mode="json"),
        store_uri=env.store_uri, work_dir=str(env.home.resolve()), worker_threads=env.threads_per_worker,
        optuna_storage=env.optuna_path, study=study, trials=trials or 0, val=val or "")
    fixed = ("trial", "state", "value", "epochs", "steps", "retry_of")
    _print_table(f"study '{result['study']}': trials (validation split)",
                 [{**{k: t[k] for k in fixed if k in t},
                   "values": ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in t.items() if k not in fixed)}
                  for t in result["trials"]])
    _print_table("cost in fine-tune steps", result["cost"])
    _print_table("test split: best configuration vs random (same budget, seeds)", result["test"])
    p = result["paired"]
    typer.echo(f"best − random in {p['criterion']}: {p['diff']:+.4f} (t {p['t_low']}..{p['t_high']}; boot {p['boot_low']}.."
               f"{p['boot_high']}, {p['boot_over']}) in {(time.time() - t0) / 60:.1f} min; report: {result['report']}")


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
    seed: int = 0,
) -> None:
    """Build the demo pool (29 OpenAI Evals tasks) and a held-out target (ToMi) from the evals wheel."""
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
    typer.echo(json.dumps({k: summary[k] for k in ("target", "pool", "query", "test")}))


@app.command("prepare-model")
def prepare_model(model: Annotated[Optional[str], typer.Option(help="model setting to resolve")] = None) -> None:
    """Convert the default GGUF model once and cache it (later runs reload it in a fraction of a second)."""
    from winnow.models.loading import check_model_name, resolve_model_path

    env = _env(command="prepare-model")
    check_model_name(model or env.model, offline=env.offline, key="--model")
    typer.echo(resolve_model_path(model or env.model, env.model_cache))


def main() -> None:
    """Runs a command; an expected error (``WinnowError``, from the CLI, a flow or a task on a Dask worker)
    ends it with its one-line message and exit code 2, its traceback only in the log file. Anything else
    keeps its traceback: that is a bug to report."""
    import click

    from winnow.errors import WinnowError

    try:
        code = app(prog_name="winnow", standalone_mode=False)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(130)
    except WinnowError as e:
        _report(e)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    sys.exit(main())
