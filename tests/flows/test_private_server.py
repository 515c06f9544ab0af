"""Without PREFECT_API_URL a winnow command runs one private Prefect server, shared by the flow and its Dask
workers (embedded mode would start a server per worker, and those raced on one SQLite database)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from flows.env import EnvSettings, apply_environment, start_private_server
env = EnvSettings()
apply_environment(env)
url = start_private_server(env)
import os
from prefect import flow, task
from prefect_dask import DaskTaskRunner

@task
def where(i: int) -> str:
    return os.environ.get("PREFECT_API_URL", "")

@flow(task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                                                 "host": "127.0.0.1", "dashboard_address": None}))
def probe() -> list[str]:
    return [f.result() for f in where.map(range(4))]

assert set(probe()) == {url}, url
print("OK", url)
"""


def test_flow_and_workers_share_one_private_server(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env.update(WINNOW_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "OK http://127.0.0.1:" in out.stdout
    assert "Starting temporary server" not in out.stdout + out.stderr
    assert (tmp_path / "home" / "prefect" / "prefect.db").exists()
