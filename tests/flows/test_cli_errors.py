"""Ordinary mistakes on the command line are one line and exit 2, naming what to fix (issue #36); --version and
`winnow settings` answer without starting anything. Each is a subprocess through the console script."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WINNOW = str(Path(sys.executable).with_name("winnow"))


def _winnow(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PREFECT_HOME", "PREFECT_API_URL", "WINNOW_LOG_FILE", "PREFECT_LOGGING_SETTINGS_PATH")}
    return subprocess.run([WINNOW, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**env, "WINNOW_HOME": str(home), "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("args, says", [
    (["curate", "--pool", "p.jsonl"], "Missing option '--query'"),
    (["curate", "--bugdet", "5"], "No such option: --bugdet"),
    (["curat"], "No such command 'curat'"),
    (["compare", "--pool", "p", "--query", "q", "--out", "o", "--selector", "knn"], "unknown selector 'knn'"),
    (["compare", "--pool", "p", "--query", "q", "--out", "o", "--representation", "grads"],
     "unknown representation 'grads'"),
    (["curate", "--pool", "missing.jsonl", "--query", "q.jsonl", "--test", "t.jsonl", "--out", "o"],
     "missing.jsonl: does not exist (--pool)"),
    (["settings", "--show", "selection.bugdet"], "did you mean selection.budget"),
    (["settings", "--set", "featurs.proj_dim=8", "--show", "features"], "featurs: no such setting; did you mean features"),
])
def test_a_mistake_is_one_line_and_exit_2(args, says, tmp_path) -> None:
    proc = _winnow(*args, home=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert says in lines[0] and "Traceback" not in proc.stderr + proc.stdout


def test_version_and_settings(tmp_path) -> None:
    proc = _winnow("--version", home=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("winnow ")
    listed = _winnow("settings", home=tmp_path)
    assert listed.returncode == 0 and "selection.budget" in listed.stdout and "features.proj_dim" in listed.stdout
    cfg = tmp_path / "c.yaml"
    cfg.write_text("selection:\n  budget: 0.2\n")
    shown = _winnow("settings", "--config", str(cfg), "--set", "selection.budget=7", "--show", "selection.budget",
                    home=tmp_path)
    assert shown.stdout.strip() == "7"  # --set over the file
    shown = _winnow("settings", "--config", str(cfg), "--show", "selection.budget", home=tmp_path)
    assert shown.stdout.strip() == "0.2"
