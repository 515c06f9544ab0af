"""Commands that select: curate (the main job), plan (its forecast), compare and select."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows.cli.app import (BudgetOpt, ConfigOpt, ModelOpt, SetOpt, app, budget_overrides, budget_value, check_files,
                           check_models, environment, launch, model_flag, prepare, print_table, print_warnings, resolve)
from winnow.registry import FEATURISED, SELECTOR_NAMES as SELECTORS

PoolOpt = Annotated[str, typer.Option(help="the candidate pool: .jsonl/.json/.parquet (gz/zst too), a datasets "
                                           "folder, or a store table filled by `winnow ingest`")]
QueryOpt = Annotated[str, typer.Option(help="a few examples of the target task")]


@app.command()
def curate(
    pool: PoolOpt, query: QueryOpt,
    test: Annotated[str, typer.Option(help="held-out examples of the target task, for evaluation")],
    out: Annotated[Path, typer.Option(help="run folder for report.md, metrics.json, selected.jsonl")],
    budget: BudgetOpt = None, model: ModelOpt = None,
    target_metric: Annotated[Optional[str], typer.Option(help="select (NICE) and evaluate for a metric: exact_match, "
                                                              "numeric_match, token_f1, includes, fuzzy_match, code, "
                                                              "reward-model, judge, module:fn")] = None,
    rewarm: Annotated[bool, typer.Option("--rewarm", help="start a new feature space (a new warm-up) instead of "
                                                          "keeping the pool's; every row is featurised again")] = False,
    validate: Annotated[bool, typer.Option("--validate", help="diagnostics on the validation split: planted "
                                                              "recall per arm, a ceiling arm, and the verdict")] = False,
    val: Annotated[Optional[str], typer.Option(help="with --validate: the validation split (default: half of "
                                                    "--test by id; the rest stays the test split)")] = None,
    ceiling: Annotated[Optional[str], typer.Option(help="with --validate: in-domain rows for the ceiling arm "
                                                        "(default: the query rows repeated to the budget)")] = None,
    config: ConfigOpt = None, set_: SetOpt = None,
) -> None:
    """Warm up, featurise (LESS gradients on Dask), select, fine-tune selected and random subsets of the same
    size, evaluate base / random / selected on --test, and write the report. With --target-metric, also select
    with NICE's policy-gradient query side. A grown pool table keeps its feature space: only new rows are featurised.
    With --validate, the validation split's diagnostics and a verdict lead the report.

    Example: winnow curate --pool data/demo/pool.jsonl --query data/demo/query.jsonl --test data/demo/test.jsonl
    --out runs/demo --budget 5%
    """
    # --target-metric is both NICE's reward and the test metric; an explicit --set eval.metric=... still wins
    target = [f"nice.metric={target_metric}", f"eval.metric={target_metric}"] if target_metric else []
    env, settings = prepare(config, [*target, *(set_ or []), *budget_overrides(budget)], model, out, "curate",
                            pool=pool, query=query, test=test, val=val, ceiling=ceiling)
    from flows.curate import curate as curate_flow
    from flows.runtime import versions

    typer.echo(f"model: {settings.model.name}; budget {settings.selection.budget}; selector "
               f"{settings.selection.selector}")
    result, minutes = launch(curate_flow, env, settings, pool=pool, query=query, test=test, out=str(out),
                             versions=versions(), rewarm=rewarm, diagnose=validate or bool(val or ceiling),
                             val=val or "", ceiling=ceiling or "")
    print_table(f"test set, budget {result['budget']} examples ({minutes:.1f} min)",
                [{"model": name, **{k: f"{v:.3f}" for k, v in m.items()}} for name, m in result["results"].items()])
    m = result["models"]
    typer.echo(f"models: selection {m['selection']} ({m['selection_fingerprint']}); trained {m['trained']} "
               f"({m['trained_fingerprint']})")
    print_warnings(result.get("warnings", []))
    v = result["verdict"]
    typer.echo(f"verdict: {v['headline']}")
    for line in v["lines"]:
        typer.echo(f"  {line}")
    typer.echo(f"report: {result['report']}")


@app.command()
def plan(
    pool: PoolOpt,
    query: Annotated[Optional[str], typer.Option(help="the query set (its size is counted)")] = None,
    test: Annotated[Optional[str], typer.Option(help="the test set (a few of its items are evaluated)")] = None,
    budget: BudgetOpt = None, model: ModelOpt = None,
    workers: Annotated[Optional[int], typer.Option(help="Dask workers the run will have (default "
                                                        "WINNOW_DASK_WORKERS)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="write the plan as JSON here")] = None,
    config: ConfigOpt = None, set_: SetOpt = None,
) -> None:
    """Before a curation: probe this machine on a few of the pool's real examples (model load, LoRA steps,
    gradient features, the prefilter's forward pass, evaluation, a store write) and print the predicted wall time
    and peak memory of each phase of the full run, and what the cheaper options would cost.

    Example: winnow plan --pool data/demo/pool.jsonl --query data/demo/query.jsonl --budget 200
    """
    import tempfile

    from tasks.plan import IMPORT_S
    from winnow.data.loaders import load_records
    from winnow.models.loading import load_tokenizer, resolve_model_path
    from winnow.plan import human, plan as plan_run, probe, sample_lengths
    from winnow.recipe import curation

    check_files(pool=pool, query=query, test=test)
    env = environment(None, "plan")
    settings = resolve(env, config, [*(set_ or []), *budget_overrides(budget), *model_flag(model)])
    check_models(settings, env)
    cfg = settings.model_copy(update={"model": settings.model.model_copy(update={
        "num_threads": env.threads_per_worker})})  # the probe runs as one worker would
    model_path = resolve_model_path(cfg.model.name, env.model_cache)
    train_path = resolve_model_path(cfg.finetune.model, env.model_cache) if cfg.finetune.model else ""
    records = load_records(pool, layout=cfg.data.format, column_map=cfg.data.map).records
    queries = load_records(query, labelled=False).records if query else []
    tests = load_records(test).records if test else []
    arms = len(curation(pool, query or "", test or "", cfg, unlabelled=sum(not r.labelled for r in queries)).arms)
    typer.echo(f"probing {len(records)} pool examples' sample on {env.threads_per_worker} thread(s)…")
    sample = records if len(records) <= 1000 else random.Random(0).sample(records, 1000)
    with tempfile.TemporaryDirectory(prefix="winnow-plan-") as tmp:
        rates = probe(model_path, cfg, sample, tests or sample, work_dir=tmp, train_model_path=train_path,
                      import_s=IMPORT_S)
    lengths = sample_lengths(load_tokenizer(model_path, trust_remote_code=cfg.model.trust_remote_code), sample,
                             cfg.model.max_length)
    result = plan_run(rates, lengths, cfg, pool_rows=len(records), query_rows=len(queries), test_rows=len(tests) or 1,
                      arms=arms, workers=workers or env.dask_workers)
    w = result["workload"]
    print_table(f"predicted: {w['pool_rows']} pool examples (mean {w['mean_tokens']:.0f} tokens), budget "
                f"{w['budget']}, {w['workers']} workers, {result['rates']['device']}",
                [{"phase": k, "wall": human(v["seconds"]), "peak memory": f"{v['peak_mb']:.0f} MB"
                  if v.get("peak_mb") else "–", "what": v["what"]} for k, v in result["phases"].items()])
    typer.echo(f"total: {human(result['total'])} (the warm-up is part of features)")
    print_table("cheaper options", [{"option": a["option"], "predicted": human(a["seconds"]),
                                     "vs configured": a["vs configured"], "set": a["set"]}
                                    for a in result["alternatives"]])
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        typer.echo(f"plan: {out}")


@app.command()
def compare(
    pool: PoolOpt, query: QueryOpt,
    out: Annotated[Path, typer.Option(help="folder for compare.md/csv and every subset")],
    representation: Annotated[Optional[list[str]], typer.Option(
        help=f"{', '.join(FEATURISED)} (repeatable; default all)")] = None,
    selector: Annotated[Optional[list[str]], typer.Option(
        help=f"{', '.join(s for s in SELECTORS if s != 'all')} (repeatable; default all)")] = None,
    budget: BudgetOpt = None, model: ModelOpt = None, config: ConfigOpt = None, set_: SetOpt = None,
) -> None:
    """Run several representation × selector pairs over one store and publish a table (sizes, sources picked,
    distance of each subset to the query set). No fine-tuning.

    Example: winnow compare --pool data/demo/pool.jsonl --query data/demo/query.jsonl --out runs/compare
    --representation hidden --selector round_robin --selector knn_uniform
    """
    from winnow.registry import canonical_representation, canonical_selector

    reps = [canonical_representation(r, "--representation") for r in representation or ()] or None
    sels = [canonical_selector(s, "--selector") for s in selector or ()] or None
    env, settings = prepare(config, [*(set_ or []), *budget_overrides(budget)], model, out, "compare",
                            pool=pool, query=query)
    from flows.compare import compare as compare_flow

    rows, _ = launch(compare_flow, env, settings, pool=pool, query=query, out=str(out), representations=reps,
                     selectors=sels)
    print_table("representation × selector", rows)


@app.command()
def select(
    pool_features: Annotated[str, typer.Option(help="pool feature table in the store (e.g. grads_adam__...)")],
    query_features: Annotated[str, typer.Option(help="query feature table in the store")],
    out: Annotated[Path, typer.Option(help="folder for the subset and its ordering")],
    selector: Annotated[str, typer.Option(help=", ".join(SELECTORS))] = "round_robin",
    budget: Annotated[str, typer.Option(help="a share ('5%', '0.05') or a count ('200')")] = "5%",
    seed: int = 0,
) -> None:
    """Select from an existing store: no model is loaded, only stored features are read.

    Example: winnow select --pool-features grads_adam__3f2a... --query-features grads_sgd__9c1b... --out runs/sel
    --selector knn_uniform --budget 200
    """
    from winnow.registry import canonical_selector
    from winnow.selection.subset import select_subset

    env = environment(out, "select")
    name = canonical_selector(selector, "--selector")
    sub = select_subset(env.store_uri, query_features, pool_features, selector=name, seed=seed,
                        budget=budget_value(budget), out_dir=out, name=name)
    d = sub.distances
    typer.echo(f"{sub.size} of {sub.pool_size} examples by {sub.selector}: distance to queries nearest "
               f"{d['nearest']:.4f}, transport {d['transport']:.4f} -> {sub.path}")
