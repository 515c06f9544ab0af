"""What every step of one flow run shares: validated settings, where things live, and the models (by content).

Every flow opens a ``Run`` once (``open_run``: settings validated, models resolved and fingerprinted) and hands
it to the steps of ``flows.steps``; a subflow gets it back from plain data (``locations_of`` / ``run_at``),
because Prefect parameters must be JSON.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flows.env import EnvSettings
from flows.runtime import resolve_locations
from tasks.model import prepare_model_task
from winnow.fingerprint import ModelRef
from winnow.results import ReadReport
from winnow.settings import ModelSettings, WinnowSettings, build_settings


@dataclass(frozen=True)
class Run:
    cfg: WinnowSettings
    store_uri: str
    work_dir: str
    base: ModelRef  # the selection model (warm-up, features, NICE)
    worker_model: ModelSettings  # cfg.model with the workers' thread count
    trained_base: ModelRef | None = None  # finetune.model (LESS-T): trained and evaluated; None = base
    reads: dict[str, ReadReport] = field(default_factory=dict)  # canonical target file -> how its original read

    @property
    def trained(self) -> tuple[ModelRef, ModelSettings]:
        """The model the fine-tunes train and the evaluations score: finetune.model, else the selection model."""
        if self.trained_base is None:
            return self.base, self.worker_model
        return self.trained_base, self.worker_model.model_copy(update={"name": self.cfg.finetune.model})

    def with_settings(self, cfg: WinnowSettings) -> "Run":
        """The same run under other settings (a tuning trial's, the best configuration's)."""
        return replace(self, cfg=cfg, worker_model=cfg.model.model_copy(
            update={"num_threads": self.worker_model.num_threads}))


def partial_settings(settings: WinnowSettings | dict[str, Any] | None) -> dict[str, Any]:
    """What the caller set, and nothing else: a flow's ``settings`` parameter is typed (so the Prefect UI's run
    form has its schema) and Prefect validates a mapping into it, but unset keys must still fall back to the
    environment, so only the fields the caller gave travel on."""
    if isinstance(settings, WinnowSettings):
        return settings.model_dump(mode="json", exclude_unset=True)
    return dict(settings or {})


def open_run(settings: WinnowSettings | dict[str, Any] | None, store_uri: str = "", work_dir: str = "",
             worker_threads: int = 0) -> Run:
    """The one way settings reach a flow: a (partial) settings mapping, validated here once. Empty locations,
    a missing ``model.name`` and ``worker_threads=0`` come from the environment (runs started by a deployment)."""
    env = EnvSettings()
    store_uri, work_dir = resolve_locations(store_uri, work_dir)
    given = partial_settings(settings)
    cfg = build_settings({**given, "model": {"name": env.model, **given.get("model", {})}})
    cache = str(Path(work_dir) / "models")
    base = prepare_model_task(cfg.model.name, cache)
    other = cfg.finetune.model if cfg.finetune.model and cfg.finetune.model != cfg.model.name else ""
    return run_at(cfg, {"store_uri": store_uri, "work_dir": work_dir, "base": base,
                        "trained_base": prepare_model_task(other, cache) if other else None,
                        "threads": worker_threads or env.threads_per_worker})


def locations_of(run: Run) -> dict[str, Any]:
    """What a subflow needs to rebuild the run (its parameters must be plain data): ``run_at`` takes it back."""
    t = run.trained_base
    return {"store_uri": run.store_uri, "work_dir": run.work_dir, "base": [run.base.path, run.base.fingerprint],
            "trained_base": [t.path, t.fingerprint] if t else None, "threads": run.worker_model.num_threads}


def run_at(cfg: WinnowSettings, loc: dict[str, Any]) -> Run:
    """A run of ``cfg`` over models already prepared at ``loc`` (``locations_of``, or ModelRefs)."""
    def ref(v: Any) -> ModelRef | None:
        return v if isinstance(v, ModelRef) or v is None else ModelRef(*v)

    return Run(cfg, loc["store_uri"], loc["work_dir"], ref(loc["base"]),  # type: ignore[arg-type]
               cfg.model.model_copy(update={"num_threads": loc["threads"]}), ref(loc.get("trained_base")))
