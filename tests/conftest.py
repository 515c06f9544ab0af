"""Test settings: Prefect state in a temporary folder (set before anything imports Prefect), offline HF,
and shared fixtures (a tiny model built once per session)."""
from __future__ import annotations

import os
import tempfile

_TMP = tempfile.mkdtemp(prefix="winnow-tests-")
os.environ["PREFECT_HOME"] = os.path.join(_TMP, "prefect")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

import dask  # noqa: E402

from flows.runtime import worker_environ  # noqa: E402

# Test flows build their own DaskTaskRunner; give their workers the same environment as `winnow`'s.
dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ(1)})


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.fixtures.tiny import make_tiny_model

    return str(make_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def data_dir() -> Path:
    return Path(__file__).parent / "data"
