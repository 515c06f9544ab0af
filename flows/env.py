"""Environment settings (env vars and ``.env``), read once by the CLI and flows — never by the library.

Also sets the Prefect variables every entry point needs *before* Prefect is imported: a project-local
``PREFECT_HOME``, telemetry off, and a longer embedded-server start-up timeout (a cold start took 12–15 s
here and the default 20 s was exceeded under load).
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EnvSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WINNOW_", env_file=".env", extra="ignore")

    home: Path = Field(Path(".winnow"), description="caches, converted models, the local store, Prefect state")
    model: str = Field("default", description="'default' (SmolLM2-135M-Instruct, offline) or a model dir/hub id")
    offline: bool = Field(True, description="set HF_HUB_OFFLINE=1 so nothing is fetched from a hub")
    lancedb_uri: str = Field("", description="feature store; empty = <home>/lancedb; s3://... for object storage")
    prefect_api_url: str = Field("", validation_alias=AliasChoices("WINNOW_PREFECT_API_URL", "PREFECT_API_URL"),
                                 description="empty = a private server per command")
    dask_scheduler_address: str = Field(
        "", validation_alias=AliasChoices("WINNOW_DASK_SCHEDULER_ADDRESS", "DASK_SCHEDULER_ADDRESS"),
        description="empty = a local Dask cluster started per flow run")
    dask_workers: int = Field(2, ge=1, description="workers of the local Dask cluster")
    threads_per_worker: int = Field(1, ge=1, description="torch threads per Dask worker")
    optuna_storage: str = Field("", description="empty = sqlite:///<home>/optuna.db")
    seed: int = Field(0, description="default seed for sampling, warm-up, projection and selection")

    @property
    def store_uri(self) -> str:
        return self.lancedb_uri or str((self.home / "lancedb").resolve())

    @property
    def optuna_path(self) -> str:
        """An RDB URL, a journal file (*.log) or a SQLite file path (default <home>/optuna.db)."""
        return self.optuna_storage or str((self.home / "optuna.db").resolve())

    @property
    def model_cache(self) -> Path:
        return (self.home / "models").resolve()


def apply_environment(env: EnvSettings) -> None:
    """Export what Prefect and Hugging Face read; existing values win so a user can override any of them."""
    env.home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "PREFECT_HOME": str((env.home / "prefect").resolve()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_LOGGING_LEVEL": "INFO",
        # Quiet per-load noise in the flow process and the Dask workers it spawns (they inherit os.environ):
        # a weight-loading bar per model load, Dask's INFO chatter, and one transformers-internal deprecation.
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "DASK_LOGGING__DISTRIBUTED": "warning",
        "PYTHONWARNINGS": "ignore:`is_gradient_checkpointing`:FutureWarning",
        # Expected errors as one line on the console, every traceback in the run's log file (flows/logs.py).
        "PREFECT_LOGGING_SETTINGS_PATH": str(Path(__file__).with_name("logging.yml")),
    }
    if env.offline:
        defaults["HF_HUB_OFFLINE"] = "1"
        defaults["TRANSFORMERS_OFFLINE"] = "1"
    if env.prefect_api_url:
        defaults["PREFECT_API_URL"] = env.prefect_api_url
    for k, v in defaults.items():
        os.environ.setdefault(k, v)
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing`", category=FutureWarning)


def start_private_server(env: EnvSettings, timeout_s: float = 120.0) -> str | None:
    """Without ``PREFECT_API_URL``, run one Prefect server for this command and point everything at it.

    Prefect's embedded mode starts a temporary server in *every* process that talks to the API — the flow
    process and each Dask worker — and those servers migrate the same SQLite database at once (seen here:
    ``duplicate column name`` and a failed run), besides costing 13–16 s per worker. One server process on a
    free loopback port, started before Prefect is imported, is shared by the flow and the workers it
    spawns (they inherit ``PREFECT_API_URL``), keeps its state in ``PREFECT_HOME`` as embedded mode does, and
    is stopped when the command exits (or is told to: SIGTERM, SIGHUP). Its UI is on, so the run links Prefect
    prints open while the command runs. Returns the API URL, or None when a server is configured already.
    """
    import atexit
    import signal
    import socket
    import subprocess
    import sys
    import time

    if env.prefect_api_url or os.environ.get("PREFECT_API_URL"):
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = Path(os.environ["PREFECT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "server.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                             str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PREFECT_UI_ENABLED": "true"})  # the "View at" links must open

    def stop() -> None:
        """SIGTERM, then SIGKILL after 10 s: a per-command server holds nothing that is not already committed to
        SQLite, and a command told to stop must not wait on a slow graceful shutdown (seen on a loaded machine)."""
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    atexit.register(stop)
    _stop_on_signals(stop)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Prefect server for this run exited ({proc.returncode}); see {home / 'server.log'}")
        if _answers(f"{url}/health"):
            os.environ["PREFECT_API_URL"] = url
            return url
        time.sleep(0.5)
    stop()
    raise RuntimeError(f"the Prefect server for this run did not answer within {timeout_s:.0f} s; see {home / 'server.log'}")


def _stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM and SIGHUP end the command as Ctrl-C does, stopping its server first: atexit alone never runs on
    a signal, and the server (its own session, so Ctrl-C in a terminal does not reach it twice) was left
    running, reparented to PID 1. Only where the signal's default action is still in place (the main thread)."""
    import signal
    import sys

    def on_signal(signum: int, frame: object) -> None:
        for sig in (signal.SIGTERM, signal.SIGHUP):  # a second signal must not re-enter the stop
            signal.signal(sig, signal.SIG_IGN)
        stop()
        sys.exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, on_signal)
        except ValueError:  # not the main thread: the caller handles signals
            return


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
