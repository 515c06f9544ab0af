"""``winnow mixture``: the search (TaskPGM, then DUET; still ``winnow mixture --config …``) and the commands over
a history of past runs: ``fit`` (surrogates side by side), ``rank`` (candidate mixtures by the kept fit) and
``suggest`` (the next runs, DUET's acquisition warm-started from the history)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from flows.cli.app import BudgetOpt, ConfigOpt, ModelOpt, SetOpt, app, budget_overrides, environment, launch, prepare, \
    print_table

mixture_app = typer.Typer(no_args_is_help=False, help="Mixture proportions: the search, and fit / rank / suggest "
                                                     "from a history of past runs.")
app.add_typer(mixture_app, name="mixture")

HistoryOpt = Annotated[list[str], typer.Option("--history", help="CSV/TSV/Parquet, one row per past run: the share "
                                                                 "of each source and outcome columns (several files "
                                                                 "are joined on the run id)")]
TargetOpt = Annotated[str, typer.Option("--target", help="the outcome column to predict")]
MinimizeOpt = Annotated[bool, typer.Option("--minimize", help="lower is better (a loss)")]
SourcesOpt = Annotated[Optional[str], typer.Option("--sources", help="the share columns: names, or a glob such as "
                                                                     "'train_*' (default: the numeric columns)")]


@mixture_app.callback(invoke_without_command=True)
def mixture(
    ctx: typer.Context,
    pool: Annotated[Optional[str], typer.Option(help="the pool; its 'source' (or --set mixture.domain_key=task) "
                                                     "makes the domains")] = None,
    test: Annotated[Optional[str], typer.Option(help="the unseen target's test set: the chosen mixture is scored "
                                                     "on it once")] = None,
    out: Annotated[Optional[Path], typer.Option(help="folder for mixture.md and plots")] = None,
    val: Annotated[Optional[str], typer.Option(help="validation set that scores the trials (default: a share of "
                                                    "--test by id, mixture.val_share; the rest stays unseen)")] = None,
    study: Annotated[str, typer.Option(help="Optuna study name; re-running resumes it")] = "mixture",
    feedback: Annotated[str, typer.Option(help="auto: score on the validation split; external: wait for "
                                               "`winnow feedback`")] = "auto",
    budget: BudgetOpt = None, model: ModelOpt = None, config: ConfigOpt = None, set_: SetOpt = None,
) -> None:
    """TaskPGM proportions from proxy-model affinities, then DUET's Bayesian search over proportions, warm
    started with uniform, size-proportional and TaskPGM mixtures; the chosen mixture is scored once on --test.
    The same as `winnow mixture search`; `fit`, `rank` and `suggest` work from a history of past runs.

    Example: winnow mixture --config configs/mixture-demo.yaml --pool data/demo/pool.jsonl --test
    data/demo/test.jsonl --out runs/mixture-demo --study demo-mixture
    """
    if ctx.invoked_subcommand is not None:
        return
    from winnow.errors import ConfigError

    missing = [f"--{k}" for k, v in (("pool", pool), ("test", test), ("out", out)) if not v]
    if missing:
        raise typer.BadParameter(f"missing option {', '.join(missing)} (or a subcommand: search, fit, rank, suggest)")
    if feedback not in ("auto", "external"):
        raise ConfigError(f"--feedback: must be auto or external, got {feedback!r}")
    env, settings = prepare(config, [*(set_ or []), *budget_overrides(budget, "mixture.budget")], model, out,
                            "mixture", pool=pool, test=test, val=val)
    from flows.mixture import mixture as mixture_flow

    result, _ = launch(mixture_flow, env, settings, pool=pool, test=test, out=str(out), optuna_storage=env.optuna_path,
                       study=study, feedback=feedback, val=val or "")
    print_table(f"mixture search '{study}': trials (validation split)",
                [{"trial": t["trial"], "start": t["start"], "score": f"{t['score']:.4f}"} for t in result["trials"]])
    print_table("test split (unseen by the search)",
                [{"mixture": k, **{n: f"{v:.3f}" for n, v in m.items()}} for k, m in result["test"].items()])
    typer.echo(f"report: {result['report']}")


@mixture_app.command("search")
def search(ctx: typer.Context, pool: Annotated[str, typer.Option()], test: Annotated[str, typer.Option()],
           out: Annotated[Path, typer.Option()], val: Optional[str] = None, study: str = "mixture",
           feedback: str = "auto", budget: BudgetOpt = None, model: ModelOpt = None, config: ConfigOpt = None,
           set_: SetOpt = None) -> None:
    """The mixture search (the options of `winnow mixture`, whose help lists them).

    Example: winnow mixture search --config configs/mixture-demo.yaml --pool data/demo/pool.jsonl --test
    data/demo/test.jsonl --out runs/mixture-demo
    """
    ctx.invoked_subcommand = None
    mixture(ctx, pool=pool, test=test, out=out, val=val, study=study, feedback=feedback, budget=budget, model=model,
            config=config, set_=set_)


def _fit(history: list[str], target: str, minimize: bool, sources: Optional[str], out: Optional[Path]
         ) -> tuple[Any, dict[str, Any], Path]:
    """The history read, its surrogates cross-validated (or the stored fit of the same history, settings and
    code reused), and the best one fitted on every run."""
    import joblib

    from winnow.mixture import surrogates
    from winnow.mixture.history import read_history
    from winnow.steps import STEPS

    env = environment(command="mixture")
    h = read_history(history, target, sources=sources, minimize=minimize)
    key = STEPS["mixture_fit"].key(inputs={"history": h.digest}, settings={"folds": 5, "repeats": 4, "top_k": 5})
    folder = out or Path(env.home) / "mixture-fits" / key
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "fit.json").exists() and json.loads((folder / "fit.json").read_text()).get("key") == key:
        return h, json.loads((folder / "fit.json").read_text()), folder
    rows = surrogates.compare(h.shares, h.outcome)
    best = rows[0]["surrogate"]
    joblib.dump(surrogates.fit(best, h.shares, h.outcome), folder / "model.joblib")
    _plot_fit(rows[0], h.outcome, folder / "predicted_vs_observed.png", target, minimize)
    fit = {"key": key, "best": best, "sources": list(h.sources), "target": target, "minimize": minimize,
           "runs": len(h.frame), "quarantined": [str(q) for q in h.quarantined],
           "surrogates": [{k: v for k, v in r.items() if k != "oof"} for r in rows]}
    (folder / "fit.json").write_text(json.dumps(fit, indent=1))
    return h, fit, folder


def _plot_fit(row: dict[str, Any], y: Any, path: Path, target: str, minimize: bool) -> None:
    from winnow.reports.plots import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sign = -1.0 if minimize else 1.0
    ax.scatter([sign * v for v in row["oof"]], [sign * v for v in y], s=12, alpha=0.7)
    _save(plt, fig, ax, f"predicted {target} (out of fold)", f"observed {target}",
          f"{row['surrogate']}: held-out ρ = {row['spearman']:.3f}", path, legend=False)


@mixture_app.command()
def fit(history: HistoryOpt, target: TargetOpt, minimize: MinimizeOpt = False, sources: SourcesOpt = None,
        out: Annotated[Optional[Path], typer.Option(help="folder for fit.json, the model and the plot")] = None) -> None:
    """Fit linear, gradient-boosting and GP surrogates of --target on a history of runs; report each one's
    cross-validated Spearman and top-5 hit rate with intervals, and keep the best.

    Example: winnow mixture fit --history mixtures.csv --history losses.csv --sources 'train_*'
    --target metric/the_pile_pile_cc_val_loss --minimize
    """
    h, result, folder = _fit(history, target, minimize, sources, out)
    print_table(f"surrogates of {target} on {result['runs']} runs (5-fold CV × 4)", [
        {"surrogate": r["surrogate"], "spearman": f"{r['spearman']:.3f} [{r['spearman_low']:.3f}, {r['spearman_high']:.3f}]",
         f"top-{r['top_k']} hit": f"{r['hit']:.2f} [{r['hit_low']:.2f}, {r['hit_high']:.2f}]"}
        for r in result["surrogates"]])
    for q in result["quarantined"]:
        typer.echo(f"quarantined: {q}")
    typer.echo(f"kept: {result['best']}; {folder / 'fit.json'}")


@mixture_app.command()
def rank(history: HistoryOpt, target: TargetOpt,
         candidates: Annotated[str, typer.Option(help="CSV/Parquet of mixtures to rank (the history's source columns)")],
         out: Annotated[Path, typer.Option(help="the ranked CSV")], minimize: MinimizeOpt = False,
         sources: SourcesOpt = None) -> None:
    """Predict the outcome of each candidate mixture with the kept fit (reused while the history is the same);
    writes every column of the candidates plus `predicted` (and `std` for a GP) and `rank` (1 = best).

    Example: winnow mixture rank --history runs.csv --target loss --minimize --candidates next.csv --out ranked.csv
    """
    import joblib
    import pandas as pd

    from winnow.mixture import surrogates
    from winnow.mixture.history import read_table, validate_shares

    h, result, folder = _fit(history, target, minimize, sources, None)
    frame = read_table(candidates)
    X = validate_shares(frame, h.sources, candidates)
    mean, std = surrogates.predict(joblib.load(folder / "model.joblib"), X)
    out_frame = frame.copy()
    out_frame["predicted"] = -mean if minimize else mean
    if std is not None:
        out_frame["std"] = std
    out_frame["rank"] = pd.Series(-mean).rank(method="first").astype(int).to_numpy()
    out.parent.mkdir(parents=True, exist_ok=True)
    out_frame.sort_values("rank").to_csv(out, index=False)
    typer.echo(f"{len(out_frame)} candidates ranked by {result['best']} (held-out ρ "
               f"{result['surrogates'][0]['spearman']:.3f}); best: row {int(out_frame['rank'].idxmin()) + 2}; {out}")


@mixture_app.command()
def suggest(history: HistoryOpt, target: TargetOpt, n: Annotated[int, typer.Option("--n", min=1, help="how many")] = 4,
            minimize: MinimizeOpt = False, sources: SourcesOpt = None,
            candidates: Annotated[Optional[str], typer.Option(help="choose among these mixtures instead")] = None,
            study: Annotated[str, typer.Option(help="the Optuna study the suggestions wait in")] = "mixture-history",
            seed: int = 0) -> None:
    """The next --n mixtures to run: DUET's GP acquisition warm-started from the history (Optuna add_trials),
    over the simplex, or among --candidates. Simplex suggestions wait in --study for `winnow feedback`.

    Example: winnow mixture suggest --history runs.csv --target loss --minimize --n 4
    """
    from winnow.mixture.design import suggest_among, suggest_simplex
    from winnow.mixture.history import read_history, read_table, validate_shares

    h = read_history(history, target, sources=sources, minimize=minimize)
    if candidates:
        frame = read_table(candidates)
        picks = suggest_among(h.shares, h.outcome, validate_shares(frame, h.sources, candidates), n, seed)
        rows = [{"row": int(i) + 2, **{s: f"{frame.iloc[i][s]:.3f}" for s in h.sources}} for i in picks]
    else:
        env = environment(command="mixture")
        rows = [{k: (v if k == "trial" else f"{v:.3f}") for k, v in r.items()}
                for r in suggest_simplex(h.shares, h.outcome, list(h.sources), n, storage=env.optuna_path,
                                         study_name=study, seed=seed)]
    print_table(f"next {len(rows)} mixtures to run" + ("" if candidates else f" (waiting in study '{study}')"), rows)
