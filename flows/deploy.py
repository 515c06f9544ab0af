"""Deployments from ``infra/prefect.yaml``: the same declarations serve on this machine (``winnow serve``) and
deploy to work pools (``prefect deploy --all --prefect-file infra/prefect.yaml``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from winnow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "infra" / "prefect.yaml"


def read_declarations(path: str | Path = DEFAULT_FILE) -> list[dict[str, Any]]:
    """The ``deployments`` list, each checked for the keys a deployment needs."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read deployments ({e})") from None
    decls = (doc or {}).get("deployments")
    if not isinstance(decls, list) or not decls:
        raise ConfigError(f"{path}: no 'deployments' list")
    for i, d in enumerate(decls):
        for key in ("name", "entrypoint"):
            if not isinstance(d.get(key), str):
                raise ConfigError(f"{path}: deployments[{i}].{key}: missing or not a string")
    return decls


def _schedule(spec: dict[str, Any]) -> Any:
    from prefect.schedules import Cron, Interval

    if "cron" in spec:
        return Cron(spec["cron"], timezone=spec.get("timezone"))
    if "interval" in spec:
        return Interval(float(spec["interval"]), timezone=spec.get("timezone"))
    raise ConfigError(f"schedule {spec}: needs 'cron' or 'interval'")


def _trigger(spec: dict[str, Any]) -> Any:
    from prefect.events import DeploymentEventTrigger

    if spec.get("type", "event") != "event":
        raise ConfigError(f"trigger {spec}: only event triggers are declared here")
    return DeploymentEventTrigger(**{k: v for k, v in spec.items() if k != "type"})


def runner_deployments(path: str | Path = DEFAULT_FILE, parameters: dict[str, dict[str, Any]] | None = None) -> list[Any]:
    """``RunnerDeployment`` objects for ``prefect.serve``; ``parameters`` overrides per deployment name."""
    from prefect.flows import load_flow_from_entrypoint

    out = []
    for d in read_declarations(path):
        flow = load_flow_from_entrypoint(str(ROOT / d["entrypoint"]), use_placeholder_flow=False)
        out.append(flow.to_deployment(
            name=d["name"], description=d.get("description"), tags=d.get("tags"),
            parameters={**d.get("parameters", {}), **(parameters or {}).get(d["name"], {})},
            schedules=[_schedule(s) for s in d.get("schedules", [])] or None,
            triggers=[_trigger(t) for t in d.get("triggers", [])] or None,
            concurrency_limit=d.get("concurrency_limit")))
    return out
