"""Write docs/cli.md, the CLI reference, from the commands themselves (each one's --help), so it cannot drift.
Run by `make docs` before `mkdocs build`."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

os.environ["COLUMNS"] = "110"
os.environ["NO_COLOR"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from flows.cli import app  # noqa: E402


def _help(args: list[str]) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], prog_name="winnow", env={"COLUMNS": "110", "NO_COLOR": "1"})
    assert result.exit_code == 0, (args, result.output)
    return re.sub(r"\x1b\[[0-9;]*m", "", result.output).rstrip()


def main() -> None:
    top = _help([])
    commands = re.findall(r"^│ ([a-z][a-z-]+) ", top, flags=re.M)
    groups = {name: list(getattr(cmd, "commands", {})) for name, cmd in typer.main.get_command(app).commands.items()}
    parts = ["# CLI reference", "", "Generated from each command's `--help` by `docs/gen_cli.py` (`make docs`).", "",
             "```text", top, "```", ""]
    for command in commands:
        for args in [[command], *([command, sub] for sub in groups.get(command, []))]:
            parts += [f"## winnow {' '.join(args)}", "", "```text", _help(args), "```", ""]
    Path(__file__).with_name("cli.md").write_text("\n".join(parts))
    print(f"docs/cli.md: {len(commands)} commands")


if __name__ == "__main__":
    main()
