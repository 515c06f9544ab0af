"""The curation report: pure functions from results to markdown, tables and a picture."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from winnow.data.readers import describe_read


def scores(m: dict[str, Any]) -> dict[str, float]:
    """An evaluation's numbers as the report shows them: the target's metric first, response loss beside it."""
    return {m["metric"]: round(m["score"], 4), "response_loss": round(m["response_loss"], 4)}


def results_table(metrics: dict[str, dict[str, Any]], split: str = "test") -> list[dict[str, Any]]:
    return [{"model": name, **scores(m), "split": split, f"n_{split}": m["n"]} for name, m in metrics.items()]


def source_table(selected: list[str], random_: list[str] | None, pool: list[str]) -> list[dict[str, Any]]:
    """Examples per source in the pool and the subsets; without a random subset, only sources selected."""
    s, r, p = Counter(selected), Counter(random_ or []), Counter(pool)
    rows = [{"source": k, "pool": p[k], "selected": s[k], **({"random": r[k]} if random_ is not None else {})}
            for k in sorted(p, key=lambda k: (-s[k], k))]
    return rows if random_ is not None else [row for row in rows if row["selected"]]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_(none)_"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def data_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per data set: counts, how it was read, and how many records took a default source or task."""
    rows = []
    for k, d in data.items():
        layouts = ", ".join(f"{name} {n}" for name, n in (d.get("layouts") or {}).items()) or "store table"
        defaulted = d.get("defaulted") or {}
        rows.append({"set": k, "in": d["in"], "used": d["used"], "quarantined": d["quarantined"],
                     "read as": describe_read(d.get("read_as")),
                     "layouts": layouts,
                     "default source / task": f"{defaulted.get('source', 0)} / {defaulted.get('task', 0)}"})
    return rows


def quarantine_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Quarantine counts per set and reason, the table a user acts on first."""
    return [{"set": k, "reason": reason, "records": n} for k, d in data.items()
            for reason, n in (d.get("reasons") or {}).items()]


def render_report(*, name: str, data: dict[str, Any], warmup: dict[str, Any], features: dict[str, Any],
                  selection: dict[str, Any], metrics: dict[str, dict[str, Any]], sources: list[dict[str, Any]],
                  settings_yaml: str, versions: dict[str, str], plot: str | None,
                  artifacts: list[dict[str, str]] | None = None, models: dict[str, str] | None = None,
                  timings: dict[str, Any] | None = None) -> str:
    quarantine = [q for d in data.values() for q in d["quarantine"]]
    q_lines = "\n".join(f"- `{q['path']}:{q['line']}` field `{q['field']}`: {q['reason']}" for q in quarantine[:50])
    more = f"\n- … and {len(quarantine) - 50} more (see quarantine.jsonl)" if len(quarantine) > 50 else ""
    counts = markdown_table(data_rows(data))
    reasons = quarantine_rows(data)
    if reasons:
        counts += "\n\n**Quarantined, by reason**\n" + markdown_table(reasons)
    parts = [
        f"# Winnow curation report: {name}",
        "## Result\n" + markdown_table(results_table(metrics)),
        (f"Selected = top {selection['budget']} of the pool by **{selection['selector']}** over LESS gradient "
         f"features (query side: loss gradients); " if "selected" in selection["distances"] else
         "The query set has prompts only, so there is no loss-gradient arm; ") +
        (f"nice = top {selection['budget']} by **{selection['selector']}** with NICE's policy-gradient query side; "
         if "nice" in selection else "") + "random = a seeded random subset of the same size; base = no "
        "fine-tuning.",
        *([f"**Models.** Selection (warm-up, features): `{models['selection']}`; fine-tunes and every evaluation "
           f"above: `{models['trained']}` (LESS-T: the selection transfers to another model)."]
          if models and models["trained"] != models["selection"] else []),
        "## Data\n" + counts + ("\n\n**Quarantined records**\n" + q_lines + more if quarantine else ""),
        "## Warm-up\n" + f"{warmup['n_examples']} examples, {len(warmup['checkpoints'])} checkpoints; "
        f"checkpoint weights (epoch-average learning rate, normalised): {warmup['weights']}." +
        (f" Warm-up {warmup['status']}." if warmup.get("status") else ""),
        "## Features\n" + markdown_table([features]) + (
            f"\n\n{features['computed']} of {features['shards']} shards computed; the others were already in the "
            "store, finished by an earlier run in the same feature space (a grown pool featurises only its new "
            "rows)." if 0 < features.get("computed", 0)
            < features.get("shards", 0) else ""),
        "## Distance to the query set\n" + markdown_table(
            [{"subset": k, "mean distance to nearest": round(v["nearest"], 4), "transport cost": round(v["transport"], 4)}
             for k, v in selection["distances"].items()]) +
        "\n\nd = 1 − similarity in the selection's representation; lower = closer to the target's queries.",
        "## Subset by source\n" + markdown_table(sources),
    ]
    if selection.get("decontamination"):
        parts.insert(3, decontamination_section(selection["decontamination"]))
    if any("lm_eval" in m for m in metrics.values()):
        parts.insert(2, harness_section(metrics))
    if "nice" in selection:
        n = selection["nice"]
        parts.insert(2, "## NICE rewards per query\n" + f"{n['usable']} of {len(n['queries'])} queries have a "
                     "direction at some checkpoint (rows 'stored: False' had none and were left out; a checkpoint "
                     "named in 'reason' had no direction and adds nothing to that query's score); "
                     f"{n.get('truncated_share', 0):.0%} of the samples were cut at nice.max_new_tokens." +
                     ("".join(f" Judge {k}: {v}." for k, v in n["reward_counters"].items())
                      if n.get("reward_counters") else "") + "\n\n" + markdown_table(n["queries"]))
    if plot:
        parts.append(f"![subset by source]({plot})")
    if timings:
        parts.append(timings_section(timings))
    if artifacts:
        parts.append("## Artifacts\n" + markdown_table(artifacts) + "\n\nEach key hashes the inputs' content, the "
                     "resolved settings and the code version of the library modules that compute it (winnow.keys); "
                     "'reused' means an artifact with the same key was found, so nothing was recomputed.")
    parts += ["## Reproduce\n```yaml\n" + settings_yaml + "```", "Versions: " +
              ", ".join(f"{k} {v}" for k, v in versions.items())]
    return "\n\n".join(parts) + "\n"


def timings_section(timings: dict[str, Any]) -> str:
    """Wall time of each phase of the run (``actual``), beside the planner's prediction when there is one."""
    actual, predicted = timings.get("actual", {}), timings.get("predicted", {})
    rows = [{"phase": k, "seconds": v, **({"predicted": predicted.get(k, "–")} if predicted else {})}
            for k, v in actual.items()]
    return ("## Timings\n" + markdown_table(rows) + "\n\nWall time of each phase of this run (warm-up is part of "
            "features); reused artifacts cost almost nothing." + (" Predicted by `winnow plan`'s probe at the start "
                                                                "of the run." if predicted else ""))


def harness_section(metrics: dict[str, dict[str, Any]]) -> str:
    """One row per lm-eval task and metric, one column per model (base, random, selected, ...)."""
    keys = sorted({(task, name) for m in metrics.values() for task, vals in m.get("lm_eval", {}).items()
                   for name in vals if name != "n"})
    rows = [{"task": task, "metric": name,
             **{model: round(m["lm_eval"][task][name], 4) if name in m.get("lm_eval", {}).get(task, {}) else "–"
                for model, m in metrics.items()},
             "n": int(next(m["lm_eval"][task].get("n", 0) for m in metrics.values() if task in m.get("lm_eval", {})))}
            for task, name in keys]
    return ("## lm-evaluation-harness\n" + markdown_table(rows) + "\n\nlm-eval's own task definitions and metrics "
            "(`eval.lm_eval_tasks`), on each model as evaluated above; its per-task stderr is left out because it "
            "reflects the task's examples only, not fine-tuning seeds.")


def decontamination_section(by_subset: dict[str, dict[str, Any]], listed: int = 20,
                            title: str = "Decontamination against the test set", refill: bool = True) -> str:
    """How many candidates each subset checked against the test set, how many copied a test item, and which.
    ``refill``: a ranked subset takes the next candidate in place of a contaminated one (a domain does not)."""
    rows = [{"subset": k, "checked": d["checked"], "test items": d["test_items"], "contaminated": d["contaminated"],
             "excluded": d["excluded"]} for k, d in by_subset.items()]
    found = [{"subset": k, "example": f["id"], "nearest test item": f["ngram_test_id"] if "n-gram" in f["reason"]
              else f["cosine_test_id"], "n-gram": f["ngram"], "cosine": f["cosine"], "reason": f["reason"]}
             for k, d in by_subset.items() for f in d["found"]]
    rule = next(iter(by_subset.values()))["rule"]
    kept = any(d["contaminated"] > d["excluded"] for d in by_subset.values())
    return (f"## {title}\n" + markdown_table(rows) + f"\n\nA candidate is contaminated "
            f"when {rule} with a test item (n-grams per turn, the task's template removed); "
            + ("they were **kept** (selection.decontaminate.enabled=false). " if kept else
               "contaminated candidates are left out" + (" and the next in the ranking takes their place. " if refill
                                                         else ". ")) +
            ("Each subset's list is `<subset>_contaminated.jsonl`." if refill else "") +
            ("\n\n" + markdown_table(found[:listed]) + (f"\n\n… and {len(found) - listed} more." if len(found) > listed
                                                        else "") if found else ""))


def _pyplot():
    """matplotlib with the file-only backend (flows run headless, often in worker processes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_sources(rows: list[dict[str, Any]], path: str | Path) -> str:
    """Bar chart of how many examples each source contributes to the selected and random subsets."""
    plt = _pyplot()

    rows = [r for r in rows if r["selected"] or r["random"]]
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(rows) + 1.2))
    y = range(len(rows))
    ax.barh([i - 0.2 for i in y], [r["selected"] for r in rows], height=0.4, label="selected")
    ax.barh([i + 0.2 for i in y], [r["random"] for r in rows], height=0.4, label="random")
    ax.set_yticks(list(y), [r["source"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("examples in subset")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_affinity(S: list[list[float]], names: list[str], path: str | Path) -> str:
    """Heat-map of the task-affinity matrix."""
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(0.35 * len(names) + 2.5, 0.35 * len(names) + 2))
    im = ax.imshow(S, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8, label="affinity")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_trials(trials: list[dict[str, Any]], names: list[str], path: str | Path) -> str:
    """Proportions of each trial (stacked bars) and the best score so far (line)."""
    plt = _pyplot()
    import numpy as np

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    x = np.arange(len(trials))
    bottom = np.zeros(len(trials))
    for d in names:
        vals = np.array([t[d] for t in trials])
        a1.bar(x, vals, bottom=bottom, label=d)
        bottom += vals
    a1.set_ylabel("proportion")
    a1.legend(fontsize=6, ncol=4, loc="upper right")
    best = np.maximum.accumulate([t["score"] for t in trials])
    a2.plot(x, [t["score"] for t in trials], "o", label="trial")
    a2.plot(x, best, "-", label="best so far")
    a2.set_xticks(x, [f"{t['trial']}\n{t['start']}" for t in trials], fontsize=6)
    a2.set_ylabel("score")
    a2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_history(values: list[float], rows: list[int], metric: str, path: str | Path) -> str:
    """The test metric of each retrain's adapter against the pool size it was selected from."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(range(1, len(rows) + 1), values, marker="o")
    ax.set_xticks(range(1, len(rows) + 1), [f"{n} rows" for n in rows], fontsize=8)
    ax.set_ylabel(f"{metric} (test)")
    ax.set_xlabel("retrain (pool size)")
    ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_study(steps: list[int], values: list[float | None], pruned: list[bool], grid_steps: int, label: str,
               path: str | Path) -> str:
    """A tuning study's best validation score so far against the fine-tune steps spent (pruned trials marked),
    with what the full grid over the same space would have spent."""
    plt = _pyplot()
    import numpy as np

    spent = np.cumsum(steps)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    finished = [(s, v) for s, v, p in zip(spent, values, pruned) if v is not None and not p]
    if finished:
        xs, ys = zip(*finished)
        ax.step(xs, np.maximum.accumulate(ys), where="post", label="best so far (complete trials)")
        ax.plot(xs, ys, "o", ms=4, label="complete trial")
    cut = [(s, v) for s, v, p in zip(spent, values, pruned) if p and v is not None]
    if cut:
        ax.plot(*zip(*cut), "x", color="tab:red", label="pruned (last epoch's score)")
    ax.axvline(grid_steps, color="grey", ls="--", label=f"full grid: {grid_steps} steps")
    ax.set_xlabel("fine-tune steps spent")
    ax.set_ylabel(f"{label} (validation)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
