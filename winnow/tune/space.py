"""The search space of ``winnow tune``: the YAML dimensions as Optuna distributions, a trial's point as settings.

Keys are the setting paths users already type after ``--set`` (so one name per knob, and every value is
validated by the same settings models), plus ``representation``, which is not a setting but the feature table
a trial's selector reads. The full grid over the same space is priced here too, in fine-tune steps, so the
report can say what the study saved.
"""
from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import numpy as np
import optuna

from winnow.budget import resolve_budget
from winnow.errors import ConfigError
from winnow.registry import FEATURISED
from winnow.settings import ParamSpec, TuneSettings, WinnowSettings, _set_dotted, build_settings


def distributions(space: dict[str, ParamSpec]) -> dict[str, optuna.distributions.BaseDistribution]:
    """Optuna's distribution per key: categorical for ``choices``, integer when both bounds are integers (a
    budget count, epochs, a LoRA rank), else a float range."""
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for key, p in space.items():
        if p.choices is not None:
            out[key] = optuna.distributions.CategoricalDistribution(list(p.choices))
        elif isinstance(p.low, int) and isinstance(p.high, int):
            out[key] = optuna.distributions.IntDistribution(p.low, p.high, log=p.log, step=int(p.step or 1))
        else:
            out[key] = optuna.distributions.FloatDistribution(float(p.low), float(p.high), log=p.log,
                                                              step=None if p.log else p.step)
    return out


def trial_settings(base: WinnowSettings, params: dict[str, Any]) -> tuple[WinnowSettings, str]:
    """A trial's settings (the study's, with the trial's values at their paths) and its representation."""
    tree = base.model_dump(mode="json")
    representation = "gradients"
    for key, value in params.items():
        if key == "representation":
            representation = value
        else:
            _set_dotted(tree, key, value)
    return build_settings(tree), representation


def check_space(base: WinnowSettings) -> list[str]:
    """Every representation the space can ask for, after checking each key names a real setting and each
    value the space can produce is valid there (one ``ConfigError`` naming ``tune.space.<key>``)."""
    problems, reps = [], ["gradients"]
    known = base.model_dump(mode="json")
    for key, p in base.tune.space.items():
        values = list(p.choices) if p.choices is not None else [p.low, p.high]
        if key == "representation":
            unknown = [v for v in values if v not in FEATURISED]
            if unknown or p.choices is None:
                problems.append(f"tune.space.representation: choose from {', '.join(FEATURISED)}, got {values}")
            reps = list(dict.fromkeys(values))
            continue
        node: Any = known
        for part in key.split("."):
            node = node.get(part, KeyError) if isinstance(node, dict) else KeyError
        if node is KeyError:
            problems.append(f"tune.space.{key}: no such setting")
            continue
        for v in values:
            try:
                trial_settings(base, {key: v})
            except ConfigError as e:
                problems.append(f"tune.space.{key}: {v!r} is not a valid value ({e.problems[0]})")
    if problems:
        raise ConfigError(problems)
    return reps


def grid_values(p: ParamSpec, points: int) -> list[Any]:
    """The values a full grid would try for one dimension: every choice, or ``points`` values across a range
    (geometric for a log range, integers kept integer)."""
    if p.choices is not None:
        return list(p.choices)
    if isinstance(p.low, int) and isinstance(p.high, int):
        return sorted({int(round(v)) for v in np.linspace(p.low, p.high, points)})
    spaced = np.geomspace(p.low, p.high, points) if p.log else np.linspace(p.low, p.high, points)
    return [float(v) for v in spaced]


def grid_points(tune: TuneSettings) -> list[dict[str, Any]]:
    """Every point of the full grid over ``tune.space``, as trial parameters."""
    axes = [grid_values(p, tune.grid_points) for p in tune.space.values()]
    return [dict(zip(tune.space, copy.deepcopy(point))) for point in itertools.product(*axes)]


def fine_tune_steps(cfg: WinnowSettings, pool_rows: int) -> int:
    """Optimizer steps of one full fine-tune under ``cfg`` (the unit studies and grids are priced in)."""
    n = resolve_budget(cfg.selection.budget, pool_rows)
    t = cfg.finetune
    return math.ceil(n / (t.batch_size * t.grad_accum)) * t.epochs


def grid_cost(base: WinnowSettings, pool_rows: int) -> dict[str, int]:
    """The full grid over the same space: how many configurations, and the fine-tune steps they would take."""
    points = grid_points(base.tune)
    return {"configurations": len(points),
            "steps": sum(fine_tune_steps(trial_settings(base, p)[0], pool_rows) for p in points)}
