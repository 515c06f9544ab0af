"""The representation × selector comparison (``winnow compare``): sizes, sources picked, distances."""
from __future__ import annotations

from collections import Counter
from typing import Any

from winnow.reports.tables import markdown_table
from winnow.results import Subset


def compare_row(representation: str, sub: Subset) -> dict[str, Any]:
    top = ", ".join(f"{s} {n}" for s, n in Counter(sub.sources).most_common(3))
    return {"representation": representation, "selector": sub.selector, "size": sub.size,
            "distance_nearest": round(sub.distances["nearest"], 4),
            "distance_transport": round(sub.distances["transport"], 4), "top_sources": top}


def render_compare(rows: list[dict[str, Any]]) -> str:
    return ("# Representations × selectors\n\n" + markdown_table(rows) + "\n\nDistances are measured in each row's "
            "own representation (d = 1 − similarity), so compare selectors within a representation; across "
            "representations compare the sources picked.\n")
