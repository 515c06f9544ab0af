"""Where tasks run: a Dask task runner on a local cluster, or on any running cluster by address."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
import subprocess
from pathlib import Path

import importlib.util

from prefect_dask import DaskTaskRunner

from flows.env import EnvSettings
from winnow.errors import MissingDependencyError


def worker_environ(threads: int) -> dict[str, str]:
    """Environment of spawned Dask workers.

    Dask's default sets ``MALLOC_TRIM_THRESHOLD_=65536``, which makes glibc hand freed memory back to the
    OS at once; torch's per-batch tensors are then page-faulted in again on every allocation (measured:
    30 % system time, ~2x slower gradients). Workers keep glibc's adaptive default and a fixed thread count.
    """
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}


def task_runner(env: EnvSettings) -> DaskTaskRunner:
    """Local cluster by default (workers bound to 127.0.0.1, one torch thread each unless configured);
    ``DASK_SCHEDULER_ADDRESS`` joins an existing cluster instead (dask-cuda, Kubernetes, SLURM), whose
    workers should get the same ``worker_environ``."""
    import dask
    import torch

    dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ(env.threads_per_worker)})
    if env.dask_scheduler_address:
        return DaskTaskRunner(address=env.dask_scheduler_address)
    if torch.cuda.is_available():
        if importlib.util.find_spec("dask_cuda") is None:
            raise MissingDependencyError("CUDA is present: GPU nodes run one Dask worker per GPU with dask-cuda "
                                         "(pip install dask-cuda), or set DASK_SCHEDULER_ADDRESS to a GPU cluster")
        return DaskTaskRunner(cluster_class="dask_cuda.LocalCUDACluster",
                              cluster_kwargs={"threads_per_worker": 1, "dashboard_address": "127.0.0.1:0"})
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": env.dask_workers, "threads_per_worker": 1,
                                          "processes": True, "host": "127.0.0.1",
                                          "dashboard_address": "127.0.0.1:0"})


def preflight(env: EnvSettings, timeout_s: float = 5.0) -> None:
    """Fail fast, naming the setting, when a configured Prefect server or Dask scheduler is unreachable
    (otherwise the first flow run would hang in retries and fail with a transport error)."""
    from winnow.errors import ConfigError

    if env.prefect_api_url:
        import httpx

        url = env.prefect_api_url.rstrip("/") + "/health"
        try:
            httpx.get(url, timeout=timeout_s).raise_for_status()
        except httpx.HTTPError as e:
            raise ConfigError(f"PREFECT_API_URL: no Prefect server answers at {env.prefect_api_url} ({e.__class__.__name__}: "
                              f"{e}); start one with `prefect server start` or unset it to run embedded") from None
    if env.dask_scheduler_address:
        from distributed import Client

        try:
            Client(env.dask_scheduler_address, timeout=timeout_s).close()
        except (OSError, TimeoutError) as e:
            raise ConfigError(f"DASK_SCHEDULER_ADDRESS: no Dask scheduler answers at {env.dask_scheduler_address} "
                              f"({e.__class__.__name__}); unset it to use a local cluster") from None


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


class EnvironmentTaskRunner(DaskTaskRunner):
    """The task runner a flow is *defined* with, resolved when a run starts (Prefect calls ``duplicate`` then):
    nothing reads the environment or probes CUDA when a flow module is imported. Runs started by a deployment
    (``winnow serve`` or a work pool) import the flow from its entrypoint, so the CLI's ``with_options``
    cannot reach them: they take the cluster named by the environment of the process that runs them."""

    def duplicate(self) -> DaskTaskRunner:
        return task_runner(EnvSettings())


def deployment_task_runner() -> DaskTaskRunner:
    return EnvironmentTaskRunner()


def resolve_locations(store_uri: str, work_dir: str) -> tuple[str, str]:
    """A flow's store and work folder: as passed, or (deployed runs) from the environment."""
    env = EnvSettings()
    return store_uri or env.store_uri, work_dir or str(env.home.resolve())


def worker_count() -> int:
    """How many workers the running flow's tasks spread over: the Dask cluster's (its spec when it is still
    starting), a thread pool's size, else WINNOW_DASK_WORKERS. For the planner, which schedules shards on them."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    runner = ctx.task_runner if ctx else None
    if isinstance(runner, DaskTaskRunner):
        client = runner.client
        spec = getattr(client.cluster, "worker_spec", None)
        return len(spec) if spec else max(1, len(client.scheduler_info()["workers"]))
    threads = getattr(runner, "_max_workers", None)  # ThreadPoolTaskRunner (tests): no public accessor
    return int(threads) if threads else EnvSettings().dask_workers
