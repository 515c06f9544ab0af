"""What a report needs to travel: its plots inlined (the Prefect UI cannot read the run folder) and a stable
key for its UI artifact (the same key every run, so the UI shows the artifact's history)."""
from __future__ import annotations

import base64
import re
from pathlib import Path


def inline_images(md: str, folder: str | Path) -> str:
    """The markdown with its local PNGs inlined as data URIs (a plot here is 20–60 kB)."""

    def inline(m: re.Match) -> str:
        path = Path(folder) / m.group(2)
        if not path.is_file():
            return m.group(0)
        return f"![{m.group(1)}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"

    return re.sub(r"!\[([^\]]*)\]\(([^)\s]+\.png)\)", inline, md)


def ui_key(name: str, what: str) -> str:
    """A Prefect artifact key (lower-case letters, digits and dashes): not a cache key, a name in the UI."""
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return f"{slug}-{what}"[:100]
