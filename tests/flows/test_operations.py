"""Operations end to end on a real local Prefect server: the deployments of infra/prefect.yaml are served,
`winnow ingest` emits winnow.pool.updated, the trigger starts the retrain deployment, and the run completes
(checked through the Prefect API); then the UI is rendered in headless Chromium showing the finished run and
its report artifact."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from winnow.settings import build_settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = ["model.max_length=64", "warmup.fraction=0.5", "warmup.train.epochs=2", "warmup.train.lr=0.01",
             "features.proj_dim=128", "features.shard_size=5", "features.batch_size=5", "selection.budget=4",
             "finetune.epochs=1", "finetune.lr=0.01", "eval.max_new_tokens=3"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check, timeout_s: float, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited {proc.returncode}\n{log.read_text()[-4000:] if log else ''}")
        try:
            got = check()
        except (httpx.HTTPError, OSError):
            got = None
        if got:
            return got
        time.sleep(1.0)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s\n{log.read_text()[-4000:] if log else ''}")


@pytest.fixture
def prefect_server(tmp_path):
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-server"), "PREFECT_API_URL": "",
           "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}
    log = tmp_path / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=tmp_path,
                            start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        _wait("prefect server", lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, 120, proc, log)
        yield api
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)


def _deployments_file(tmp: Path, data: Path, model: str) -> Path:
    """infra/prefect.yaml itself, with the retrain and inbox deployments pointed at this test's data."""
    doc = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())
    store, work = str(tmp / "store"), str(tmp / "work")
    for d in doc["deployments"]:
        if d["entrypoint"].startswith("flows/retrain.py"):
            d["parameters"].update(query=str(data / "query.jsonl"), test=str(data / "test.jsonl"),
                                   out=str(tmp / "runs"),
                                   settings=build_settings(None, [*OVERRIDES, f"model.name={model}"]).model_dump(mode="json"),
                                   store_uri=store, work_dir=work)
        if d["entrypoint"].startswith("flows/ingest.py"):
            d["parameters"].update(paths=[str(tmp / "inbox")], store_uri=store)
    (tmp / "inbox").mkdir()
    path = tmp / "prefect.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_ingest_triggers_retrain_on_a_real_server_and_the_ui_shows_it(prefect_server, tiny_model_path, data_dir,
                                                                       tmp_path) -> None:
    api = prefect_server
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "prefect-client"),
           "WINNOW_HOME": str(tmp_path / "home"), "WINNOW_LANCEDB_URI": str(tmp_path / "store"),
           "WINNOW_DASK_WORKERS": "1"}
    decls = _deployments_file(tmp_path, data_dir / "good", tiny_model_path)
    winnow = [sys.executable, "-m", "flows.cli"]
    log = tmp_path / "serve.log"
    serve = subprocess.Popen([*winnow, "serve", "--deployments", str(decls)], env=env, cwd=ROOT,
                             stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        names = {d["name"] for d in yaml.safe_load(decls.read_text())["deployments"]}
        _wait("deployments registered",
              lambda: names <= {d["name"] for d in httpx.post(f"{api}/deployments/filter", json={}).json()},
              120, serve, log)
        _wait("retrain trigger registered", lambda: any(
            "retrain-on-new-data" in a["name"] for a in httpx.post(f"{api}/automations/filter", json={}).json()),
            60, serve, log)

        new = tmp_path / "new.jsonl"
        new.write_text((data_dir / "good" / "pool.jsonl").read_text())
        ingest = subprocess.run([*winnow, "ingest", str(new)], env=env, cwd=ROOT, capture_output=True, text=True,
                                timeout=300)
        assert ingest.returncode == 0, ingest.stderr[-3000:]
        assert "20 new rows in pool" in ingest.stdout

        def finished_retrain():
            dep = [d for d in httpx.post(f"{api}/deployments/filter", json={}).json()
                   if d["name"] == "retrain-on-new-data"][0]
            runs = httpx.post(f"{api}/flow_runs/filter",
                              json={"flow_runs": {"deployment_id": {"any_": [dep["id"]]}}}).json()
            failed = [r for r in runs if r["state_type"] in ("FAILED", "CRASHED")]
            assert not failed, f"retrain run failed: {failed[0]['state']}\n{log.read_text()[-4000:]}"
            return [r for r in runs if r["state_type"] == "COMPLETED"]

        run = _wait("triggered retrain run completed", finished_retrain, 420, serve, log)[0]
        artifacts = httpx.post(f"{api}/artifacts/filter",
                               json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
        report = [a for a in artifacts if a["key"] == "retrain-pool-report"]
        assert report and "Winnow retrain: pool" in report[0]["data"]
        assert len(list((tmp_path / "runs").glob("v*/report.md"))) == 1

        # The same declarations on a work pool, through Prefect's own CLI (what `prefect deploy` users run).
        prefect = [sys.executable, "-m", "prefect"]
        pool = subprocess.run([*prefect, "work-pool", "create", "winnow-cpu", "--type", "process"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert pool.returncode == 0, pool.stdout[-2000:] + pool.stderr[-2000:]
        dep = subprocess.run([*prefect, "--no-prompt", "deploy", "--all", "--prefect-file", "infra/prefect.yaml"],
                             env={**env, "WINNOW_REPO": str(ROOT)}, cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
        assert dep.returncode == 0, dep.stdout[-3000:] + dep.stderr[-3000:]
        pooled = {d["name"] for d in httpx.post(f"{api}/deployments/filter", json={}).json()
                  if d.get("work_pool_name") == "winnow-cpu"}
        assert names <= pooled

        # Last, so that a machine without a browser still runs every check above.
        if shutil.which("chromium") and shutil.which("chromedriver"):
            sys.path.insert(0, str(ROOT / "infra"))
            from ui_screenshot import screenshot

            ui = api.removesuffix("/api")
            # the run page (completed, started by the trigger) and its report artifact (which names the run)
            pages = {"flow-run": (f"{ui}/runs/flow-run/{run['id']}", [run["name"], "Completed", "retrain-on-new-data"]),
                     "report": (f"{ui}/artifacts/artifact/{report[0]['id']}",
                                ["Winnow retrain: pool", "Result on the test set", run["name"]])}
            for name, (url, expect) in pages.items():
                shot = tmp_path / f"ui-{name}.png"
                screenshot(url, str(shot), expect, timeout_s=90)
                assert shot.stat().st_size > 20_000
                if os.environ.get("WINNOW_SCREENSHOT_DIR"):
                    shutil.copy(shot, Path(os.environ["WINNOW_SCREENSHOT_DIR"]) / shot.name)
        else:
            pytest.skip("chromium/chromedriver not installed (make browser-tool): every check ran but the UI's")
    finally:
        os.killpg(serve.pid, 15)
        serve.wait(60)
