"""Publishing a report: the rendered markdown and its side files into the run folder, and the same markdown and
its tables into the Prefect UI as artifacts (keys stable per name, so the UI keeps their history)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from winnow.reports.publish import inline_images, ui_key


@task(name="publish-report")
def publish_task(out_dir: str, name: str, markdown: str, *, description: str, report: str = "report.md",
                 files: dict[str, str] | None = None,
                 tables: dict[str, tuple[str, list[dict[str, Any]]]] | None = None) -> str:
    """``files``: other texts to write beside the report (settings, metrics, predictions); ``tables``: UI table
    artifacts as {what: (description, rows)}. Returns the report's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / report).write_text(markdown)
    for fname, text in (files or {}).items():
        (out / fname).write_text(text)
    create_markdown_artifact(markdown=inline_images(markdown, out), key=ui_key(name, "report"), description=description)
    for what, (desc, rows) in (tables or {}).items():
        if rows:
            create_table_artifact(table=rows, key=ui_key(name, what), description=desc)
    return str(out / report)
