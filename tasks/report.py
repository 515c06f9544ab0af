"""Report task: markdown, tables and a plot, on disk and as Prefect artifacts."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect import task

from winnow.data.loaders import write_jsonl
from winnow.report import plot_sources, quarantine_rows, render_report, results_table, scores, source_table


def artifact_key(name: str, what: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return f"{slug}-{what}"[:100]


def with_inline_images(md: str, folder: str | Path) -> str:
    """The report's markdown with its local PNGs inlined as data URIs: the Prefect UI cannot read the run
    folder, so an artifact shows its plots only if it carries them (a plot here is 20–60 kB)."""
    import base64
    import re

    def inline(m: re.Match) -> str:
        path = Path(folder) / m.group(2)
        if not path.is_file():
            return m.group(0)
        return f"![{m.group(1)}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"

    return re.sub(r"!\[([^\]]*)\]\(([^)\s]+\.png)\)", inline, md)


@task(name="report")
def report_task(name: str, out_dir: str, data: dict[str, Any], warmup: dict[str, Any], features: dict[str, Any],
                subsets: dict[str, dict[str, Any]], metrics: dict[str, dict[str, Any]], settings_yaml: str,
                versions: dict[str, str], nice: dict[str, Any] | None = None,
                artifacts: list[dict[str, str]] | None = None, models: dict[str, str] | None = None,
                timings: dict[str, Any] | None = None) -> str:
    out = Path(out_dir)
    sel, rnd = subsets.get("selected") or subsets["nice"], subsets["random"]
    sources = source_table(sel["sources"], rnd["sources"], sel["pool_sources"])
    selection = {"budget": sel["budget"], "selector": sel["selector"],
                 "distances": {name: sub["distances"] for name, sub in subsets.items()},
                 "decontamination": {name: sub["decontamination"] for name, sub in subsets.items()
                                     if sub.get("decontamination")}}
    if nice is not None:
        selection["nice"] = nice
    plot = plot_sources(sources, out / "subset_sources.png")
    md = render_report(name=name, data=data, warmup=warmup, features=features, selection=selection,
                       metrics=metrics, sources=sources, settings_yaml=settings_yaml, versions=versions,
                       plot=Path(plot).name, artifacts=artifacts, models=models, timings=timings)
    (out / "report.md").write_text(md)
    (out / "settings.yaml").write_text(settings_yaml)
    write_jsonl(out / "quarantine.jsonl", [q for d in data.values() for q in d["quarantine"]])
    summary = {k: {**scores(v), "metric": v["metric"], "split": "test", "n": v["n"], "counters": v["counters"],
                   **({"lm_eval": v["lm_eval"]} if "lm_eval" in v else {})} for k, v in metrics.items()}
    (out / "metrics.json").write_text(json.dumps({"results": summary, "budget": selection["budget"],
                                                  "selector": selection["selector"], "versions": versions,
                                                  "features": features, "timings": timings or {},
                                                  "artifacts": artifacts or []}, indent=1))
    for k, v in metrics.items():
        write_jsonl(out / f"predictions_{k}.jsonl", v["predictions"])
    create_markdown_artifact(markdown=with_inline_images(md, out), key=artifact_key(name, "report"), description="Winnow curation report")
    create_table_artifact(table=results_table(metrics), key=artifact_key(name, "results"),
                          description="base / random / selected on the test set")
    if any(d["quarantined"] for d in data.values()):
        create_table_artifact(table=quarantine_rows(data), key=artifact_key(name, "quarantine"),
                              description="quarantined records per set and reason (records in quarantine.jsonl)")
    create_table_artifact(table=sources, key=artifact_key(name, "subset-sources"),
                          description="examples per source in each subset")
    return str(out / "report.md")
