"""Where tasks run: a Dask task runner on a local cluster, or on any running cluster by address."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
import subprocess
from pathlib import Path

from prefect_dask import DaskTaskRunner

from flows.env import EnvSettings


def task_runner(env: EnvSettings) -> DaskTaskRunner:
    """Local cluster by default (workers bound to 127.0.0.1, one torch thread each unless configured);
    ``DASK_SCHEDULER_ADDRESS`` joins an existing cluster instead (dask-cuda, Kubernetes, SLURM)."""
    if env.dask_scheduler_address:
        return DaskTaskRunner(address=env.dask_scheduler_address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": env.dask_workers, "threads_per_worker": 1,
                                          "processes": True, "host": "127.0.0.1",
                                          "dashboard_address": "127.0.0.1:0"})


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("winnow", "torch", "transformers", "peft", "prefect", "dask", "lancedb"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "?"
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent).stdout.strip()
        out["commit"] = sha or "?"
    except (OSError, subprocess.SubprocessError):
        out["commit"] = "?"
    return out
