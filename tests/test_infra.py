"""The infra specs are what they claim: deployments load and match their flows, the Kubernetes manifests are
well-formed and consistent, the SLURM cluster renders a job script (dask-jobqueue's own dry run), and the GPU
image copies what exists and pins the same torch."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"


def test_deployments_load_their_flows_with_valid_parameters() -> None:
    from prefect.flows import load_flow_from_entrypoint

    from flows.deploy import read_declarations, runner_deployments

    decls = read_declarations()
    assert {"weekly-curation", "retrain-on-new-data", "ingest-inbox", "ingest", "curate", "select",
            "mixture-search", "tune"} == {d["name"] for d in decls}
    for d in decls:
        flow = load_flow_from_entrypoint(str(ROOT / d["entrypoint"]), use_placeholder_flow=False)
        params = inspect.signature(flow.fn).parameters
        assert set(d.get("parameters", {})) <= set(params), (d["name"], set(d["parameters"]) - set(params))
        required = {n for n, p in params.items() if p.default is inspect.Parameter.empty}
        if d["name"] != "select":  # select asks for its two feature tables per run
            assert required <= set(d["parameters"]), (d["name"], required - set(d["parameters"]))
        assert d["work_pool"]["name"] == "winnow-cpu"
    by_name = {dep.name: dep for dep in runner_deployments()}
    assert by_name["weekly-curation"].schedules[0].schedule.cron == "0 3 * * 1"
    trig = by_name["retrain-on-new-data"].triggers[0]
    assert trig.expect == {"winnow.pool.updated"} and trig.match.root["prefect.resource.id"] == "winnow.pool.pool"
    assert by_name["ingest-inbox"].schedules[0].schedule.interval.total_seconds() == 60
    assert by_name["tune"].schedules[0].schedule.cron == "0 5 * * 1" and by_name["tune"].parameters["min_growth"] > 0


def test_deployment_settings_validate_and_the_retrain_ones_are_the_demo_config() -> None:
    """Settings reach every flow one way (a mapping); the deployments' mappings are valid settings, and the
    retrain deployments' copy of configs/demo.yaml has not drifted from it."""
    from flows.deploy import read_declarations
    from winnow.settings import build_settings, load_settings

    decls = {d["name"]: d for d in read_declarations()}
    for d in decls.values():
        if "settings" in d.get("parameters", {}):
            build_settings(d["parameters"]["settings"])  # raises ConfigError naming the bad key
    demo = load_settings(str(ROOT / "configs" / "demo.yaml"))
    for name in ("weekly-curation", "retrain-on-new-data"):
        assert build_settings(decls[name]["parameters"]["settings"]) == demo, name


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_kubernetes_manifests_are_consistent() -> None:
    cluster = _docs(INFRA / "kubernetes" / "dask-cluster.yaml")[0]
    assert (cluster["apiVersion"], cluster["kind"]) == ("kubernetes.dask.org/v1", "DaskCluster")
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    scheduler = cluster["spec"]["scheduler"]["spec"]["containers"][0]
    assert worker["args"][:3] == ["dask", "cuda", "worker"] and worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert scheduler["args"] == ["dask", "scheduler"]
    ports = {p["name"] for p in scheduler["ports"]}
    assert {p["targetPort"] for p in cluster["spec"]["scheduler"]["service"]["ports"]} <= ports
    assert cluster["spec"]["scheduler"]["service"]["type"] == "ClusterIP"

    docs = {d["kind"]: d for d in _docs(INFRA / "kubernetes" / "prefect-worker.yaml")}
    assert {"ServiceAccount", "Role", "RoleBinding", "Deployment"} <= set(docs)
    dep = docs["Deployment"]["spec"]
    assert dep["selector"]["matchLabels"].items() <= dep["template"]["metadata"]["labels"].items()
    container = dep["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["prefect", "worker", "start"] and container["image"] == worker["image"]
    assert dep["template"]["spec"]["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DASK_SCHEDULER_ADDRESS"].startswith(f"tcp://{cluster['metadata']['name']}-scheduler:")


def test_slurm_cluster_renders_a_gpu_job_script() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("slurm_cluster", INFRA / "slurm" / "cluster.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cluster = mod.make_cluster("gpu", "02:00:00", "16GB", 4, None, None, "127.0.0.1")
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p gpu", "#SBATCH --gres=gpu:1", "#SBATCH --cpus-per-task=4", "#SBATCH -t 02:00:00",
                 "unset MALLOC_TRIM_THRESHOLD_"):
        assert line in script
    assert re.search(r"distributed\.cli\.dask_worker tcp://127\.0\.0\.1:\d+ .*--nthreads 1", script)


def test_gpu_image_copies_what_exists_and_pins_torch() -> None:
    text = (INFRA / "docker" / "Dockerfile.gpu").read_text()
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.startswith("#")]
    assert lines[0].startswith("FROM python:3.11")
    for line in lines:
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), src
    pinned = re.search(r'"torch==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert f"torch=={pinned} --index-url https://download.pytorch.org/whl/cu" in text
