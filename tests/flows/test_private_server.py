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


HOLD = """
import signal
signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as in a terminal: under nohup (inherited SIG_IGN) a hangup is meant to be ignored
from flows.env import EnvSettings, apply_environment, start_private_server
env = EnvSettings()
apply_environment(env)
start_private_server(env)
import time
print("READY", flush=True)
time.sleep(300)
"""


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_signal_to_the_command_stops_its_server(tmp_path, signame) -> None:
    """No orphan: the server started for a command goes when the command is told to stop."""
    import signal

    import psutil

    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env.update(WINNOW_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen([sys.executable, "-c", HOLD], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "READY"
        servers = [c for c in psutil.Process(proc.pid).children(recursive=True)
                   if "server" in " ".join(c.cmdline()) and "prefect" in " ".join(c.cmdline())]
        assert servers, "no Prefect server process under the command"
        proc.send_signal(getattr(signal, signame))
        assert proc.wait(120) == 128 + getattr(signal, signame)  # the stop takes ≤ 20 s; a loaded CI is slow
        _, alive = psutil.wait_procs(servers, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_private_server_serves_the_ui_its_links_point_to(tmp_path) -> None:
    """Prefect prints "View at <ui>/runs/flow-run/<id>" for every run: the private server must serve that UI."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env.update(WINNOW_HOME=str(tmp_path / "home"))
    script = ("from flows.env import EnvSettings, apply_environment, start_private_server\n"
              "env = EnvSettings(); apply_environment(env); url = start_private_server(env)\n"
              "import httpx\nr = httpx.get(url.removesuffix('/api') + '/runs/flow-run/0', timeout=30,\n"
              "              headers={'accept': 'text/html'})\n"
              "print('UI', r.status_code, 'html' in r.headers.get('content-type', ''))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "UI 200 True" in out.stdout, out.stdout[-1000:] + out.stderr[-2000:]
