"""Bad settings outside the data: each gets a clear message naming the setting, before any work starts."""
from __future__ import annotations

import socket

import pytest

from flows.env import EnvSettings
from flows.runtime import preflight
from winnow.errors import ConfigError
from winnow.models.loading import resolve_model_path


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_prefect_server_names_the_setting() -> None:
    env = EnvSettings(prefect_api_url=f"http://127.0.0.1:{_closed_port()}/api")
    with pytest.raises(ConfigError, match="PREFECT_API_URL: no Prefect server answers"):
        preflight(env, timeout_s=2)


def test_unreachable_dask_scheduler_names_the_setting() -> None:
    env = EnvSettings(dask_scheduler_address=f"tcp://127.0.0.1:{_closed_port()}")
    with pytest.raises(ConfigError, match="DASK_SCHEDULER_ADDRESS: no Dask scheduler answers"):
        preflight(env, timeout_s=2)


def test_missing_model_path_names_the_setting(tmp_path) -> None:
    with pytest.raises(ConfigError, match="model.name: .*nowhere does not exist"):
        resolve_model_path(str(tmp_path / "nowhere"), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="without config.json"):
        resolve_model_path(str(tmp_path / "empty"), tmp_path)


def test_query_set_with_no_examples(tmp_path) -> None:
    from winnow.data.loaders import load_records
    from winnow.errors import DataFormatError

    (tmp_path / "query.jsonl").write_text("")
    with pytest.raises(DataFormatError, match=r"query.jsonl: no usable record \(0 read\)"):
        load_records(tmp_path / "query.jsonl")
