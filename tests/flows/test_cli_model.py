"""The model a user names is the model that runs (issue #36's first item): settings resolve as defaults <
WINNOW_MODEL < the config file < --set < --model, and a model that cannot be opened is one line and exit 2,
before any server starts or model is converted. These fail in the CLI's first second, so they are fast."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WINNOW = str(Path(sys.executable).with_name("winnow"))
GOOD = ROOT / "tests" / "data" / "good"
DATA = ["--pool", str(GOOD / "pool.jsonl"), "--query", str(GOOD / "query.jsonl"), "--test", str(GOOD / "test.jsonl")]


def _winnow(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("PREFECT_HOME", "PREFECT_API_URL", "WINNOW_LOG_FILE", "PREFECT_LOGGING_SETTINGS_PATH")}
    return subprocess.run([WINNOW, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**base, "WINNOW_HOME": str(home), "PYTHONPATH": str(ROOT), **(env or {})})


def _config(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"model": {"name": name}}))
    return path


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    return lines[0]


def test_the_config_files_model_is_not_replaced_by_the_default(tmp_path) -> None:
    t0 = time.time()
    line = _one_line_error(_winnow("curate", *DATA, "--out", str(tmp_path / "run"), "--config",
                                   str(_config(tmp_path, "/nonexistent/model")), home=tmp_path / "home"))
    assert "model.name: /nonexistent/model does not exist" in line
    assert time.time() - t0 < 60 and not (tmp_path / "home" / "models").exists()  # nothing converted first


def test_set_and_the_model_flag_win_in_that_order(tmp_path, tiny_model_path) -> None:
    cfg = _config(tmp_path, tiny_model_path)
    line = _one_line_error(_winnow("curate", *DATA, "--out", str(tmp_path / "a"), "--config", str(cfg),
                                   "--set", "model.name=/nonexistent/set", home=tmp_path / "home"))
    assert "/nonexistent/set does not exist" in line
    line = _one_line_error(_winnow("curate", *DATA, "--out", str(tmp_path / "b"), "--config", str(cfg),
                                   "--set", f"model.name={tiny_model_path}", "--model", "/nonexistent/flag",
                                   home=tmp_path / "home"))
    assert line.startswith("error: --model (model.name): /nonexistent/flag does not exist")


def test_winnow_model_fills_only_an_unnamed_model(tmp_path, tiny_model_path) -> None:
    env = {"WINNOW_MODEL": "/nonexistent/env"}
    line = _one_line_error(_winnow("curate", *DATA, "--out", str(tmp_path / "a"), home=tmp_path / "home", env=env))
    assert "/nonexistent/env does not exist" in line
    proc = _winnow("curate", *DATA, "--out", str(tmp_path / "b"), "--config", str(_config(tmp_path, "/nonexistent/cfg")),
                   home=tmp_path / "home", env=env)
    assert "/nonexistent/cfg does not exist" in _one_line_error(proc)


def test_an_offline_hub_id_names_the_switch(tmp_path) -> None:
    line = _one_line_error(_winnow("curate", *DATA, "--out", str(tmp_path / "run"), "--model",
                                   "Qwen/Qwen2.5-0.5B-Instruct", home=tmp_path / "home",
                                   env={"HF_HOME": str(tmp_path / "hf")}))
    assert "WINNOW_OFFLINE=false" in line and "Qwen/Qwen2.5-0.5B-Instruct" in line
