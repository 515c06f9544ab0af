"""The curation report (``winnow curate``): result, data, warm-up, features, distances, sources, timings."""
from __future__ import annotations

from typing import Any

from winnow.reports.guard import decontamination_section, guard_warnings, warnings_block
from winnow.reports.tables import data_rows, markdown_table, quarantine_rows, results_table, source_table
from winnow.results import Evaluation, Features, ReadReport, RecipeRun, Split, Subset


def render_curation(*, name: str, run: RecipeRun, selected: str, settings_yaml: str, versions: dict[str, str],
                    models: dict[str, str], plot: str | None = None, verdict: dict[str, Any] | None = None,
                    planted: dict[str, dict[str, Any]] | None = None, split: Split | None = None) -> str:
    """``selected`` names the arm the report is about (``selected``, or ``nice`` for a prompts-only query set)."""
    sel = run.subsets[selected]
    feats = run.features
    parts = [
        f"# Winnow curation report: {name}",
        verdict_section(verdict) if verdict else "",
        f"**Models.** Selection (warm-up, features): `{models['selection']}` (content "
        f"{models['selection_fingerprint']}); fine-tunes and every evaluation above: `{models['trained']}` (content "
        f"{models['trained_fingerprint']})" + (" (LESS-T: the selection transfers to another model)."
                                               if models["trained"] != models["selection"] else "."),
        warnings_block(guard_warnings({k: s.decontamination for k, s in run.subsets.items()})),
        "## Result\n" + markdown_table(results_table(run.evals)),
        (f"Selected = top {sel.size} of the pool by **{sel.selector}** over LESS gradient features (query side: "
         "loss gradients); " if "selected" in run.subsets else
         "The query set has prompts only, so there is no loss-gradient arm; ") +
        (f"nice = top {sel.size} by **{sel.selector}** with NICE's policy-gradient query side; "
         if "nice" in run.subsets else "") + "random = a seeded random subset of the same size; base = no "
        "fine-tuning.",
    ]
    if split is not None:
        parts.append(validation_section(planted or {}, split, "ceiling" in run.subsets))
    if any(e.lm_eval for e in run.evals.values()):
        parts.append(harness_section(run.evals))
    if feats.nice:
        parts.append(nice_section(feats.nice))
    parts.append(data_section(run.reads))
    found = {k: s.decontamination for k, s in run.subsets.items() if s.decontamination}
    if found:
        parts.append(decontamination_section(found))
    w = feats.warmup
    if w is not None:
        parts.append("## Warm-up\n" + f"{w.n_examples} examples, {len(w.checkpoints)} checkpoints; checkpoint weights "
                     f"(epoch-average learning rate, normalised): {list(w.weights)}. Warm-up {w.status}.")
    parts += [features_section(feats),
              "## Distance to the query set\n" + markdown_table(
                  [{"subset": k, "mean distance to nearest": round(s.distances["nearest"], 4),
                    "transport cost": round(s.distances["transport"], 4)} for k, s in run.subsets.items()
                   if s.distances]) +
              "\n\nd = 1 − similarity in the selection's representation; lower = closer to the target's queries.",
              "## Subset by source\n" + markdown_table(sources(run.subsets, selected))]
    if plot:
        parts.append(f"![subset by source]({plot})")
    if run.timings:
        parts.append(timings_section(run.timings, {k: v["seconds"] for k, v in run.plan.get("phases", {}).items()}))
    if run.artifacts:
        parts.append("## Artifacts\n" + markdown_table(list(run.artifacts)) + "\n\nEach key hashes the inputs' "
                     "content, the settings slice, the models' content and the code version of the modules that "
                     "compute it (winnow.steps); 'reused' means an artifact with the same key was found.")
    parts += ["## Reproduce\n```yaml\n" + settings_yaml + "```", "Versions: " +
              ", ".join(f"{k} {v}" for k, v in versions.items())]
    return "\n\n".join(p for p in parts if p) + "\n"


def sources(subsets: dict[str, Subset], selected: str) -> list[dict[str, Any]]:
    sel, rnd = subsets[selected], subsets.get("random")
    return source_table(sel.sources, rnd.sources if rnd else None, sel.pool_sources)


def data_section(reads: dict[str, ReadReport], listed: int = 50) -> str:
    quarantine = [q for d in reads.values() for q in d.quarantine]
    counts = markdown_table(data_rows(reads))
    reasons = quarantine_rows(reads)
    if reasons:
        counts += "\n\n**Quarantined, by reason**\n" + markdown_table(reasons)
    if quarantine:
        counts += "\n\n**Quarantined records**\n" + "\n".join(
            f"- `{q['path']}:{q['line']}` field `{q['field']}`: {q['reason']}" for q in quarantine[:listed])
        if len(quarantine) > listed:
            counts += f"\n- … and {len(quarantine) - listed} more (see quarantine.jsonl)"
    return "## Data\n" + counts


def features_section(feats: Features) -> str:
    g = feats.of("gradients")
    c = feats.cascade
    cascade = (f"{c.prefilter.split('__')[0]} ranked {c.pool_rows}; gradients for {c.candidates} "
               f"({c.tail_rows} from the tail)") if c else "none"
    row = {"pool_table": g.pool, "query_table": g.query, "projector": feats.projector, "dim": feats.dim,
           "cascade": cascade, "shards": feats.shards, "computed": feats.computed, "skipped": feats.skipped,
           "seconds": feats.seconds}
    grown = (f"\n\n{feats.computed} of {feats.shards} shards computed; the others were already in the store, "
             "finished by an earlier run in the same feature space (a grown pool featurises only its new rows)."
             if 0 < feats.computed < feats.shards else "")
    return "## Features\n" + markdown_table([row]) + grown


def nice_section(n: dict[str, Any]) -> str:
    return ("## NICE rewards per query\n" + f"{n['usable']} of {len(n['queries'])} queries have a direction at some "
            "checkpoint (rows 'stored: False' had none and were left out; a checkpoint named in 'reason' had no "
            "direction and adds nothing to that query's score); "
            f"{n.get('truncated_share', 0):.0%} of the samples were cut at nice.max_new_tokens." +
            "".join(f" Judge {k}: {v}." for k, v in (n.get("reward_counters") or {}).items()) + "\n\n" +
            markdown_table(n["queries"]))


def timings_section(actual: dict[str, float], predicted: dict[str, float] | None = None) -> str:
    """Wall time of each phase of the run, beside the planner's prediction when there is one."""
    rows = [{"phase": k, "seconds": v, **({"predicted": predicted.get(k, "–")} if predicted else {})}
            for k, v in actual.items()]
    return ("## Timings\n" + markdown_table(rows) + "\n\nWall time of each phase of this run (warm-up is part of "
            "features); reused artifacts cost almost nothing." + (" Predicted by `winnow plan`'s probe at the start "
                                                                "of the run." if predicted else ""))


def harness_section(evals: dict[str, Evaluation]) -> str:
    """One row per lm-eval task and metric, one column per model (base, random, selected, ...)."""
    keys = sorted({(task, name) for e in evals.values() for task, vals in e.lm_eval.items() for name in vals
                   if name != "n"})
    rows = [{"task": task, "metric": name,
             **{model: round(e.lm_eval[task][name], 4) if name in e.lm_eval.get(task, {}) else "–"
                for model, e in evals.items()},
             "n": int(next(e.lm_eval[task].get("n", 0) for e in evals.values() if task in e.lm_eval))}
            for task, name in keys]
    return ("## lm-evaluation-harness\n" + markdown_table(rows) + "\n\nlm-eval's own task definitions and metrics "
            "(`eval.lm_eval_tasks`), on each model as evaluated above; its per-task stderr is left out because it "
            "reflects the task's examples only, not fine-tuning seeds.")


def verdict_section(v: dict[str, Any]) -> str:
    return "## Verdict\n**" + v["headline"] + ".**" + "".join(f"\n- {line}" for line in v["lines"])


def validation_section(planted: dict[str, dict[str, Any]], split: Split, ceiling: bool) -> str:
    """Planted recall per arm, on the validation split, and what the ceiling arm trained on."""
    rows = [{"arm": k, "representation": p["representation"], "selector": p["selector"], "planted": p["planted"],
             "budget": p["budget"], "recall": round(p["recall"], 3), "chance": round(p["chance"], 3),
             "mean rank percentile": round(p["mean_percentile"], 1)} for k, p in planted.items()]
    return ("## Validation (diagnostics on the validation split, never test)\n" + split.how + ". " +
            "Planted recall: the validation rows, featurised as pool rows, ranked among the pool by each arm's "
            "selector (no fine-tune); recall within the arm's budget, chance = budget / (pool + planted).\n\n" +
            (markdown_table(rows) if rows else "No arm has a featurised representation to plant into.") +
            ("\n\nThe ceiling arm trains on in-domain rows under the same recipe (`ceiling.jsonl`: --ceiling, or "
             "the query rows repeated to the budget) and is evaluated on the test split like every arm."
             if ceiling else ""))
