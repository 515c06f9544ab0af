"""The experiment's configuration and its cells.

A cell is one fine-tune + evaluation: a target, a method (a representation × selector pair, or a baseline,
or a distance quantile), a budget and a seed. Its key hashes everything that determines its result, so a
finished cell is found again on any later run (adding a seed or a budget adds cells, it changes none).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from winnow.budget import Budget
from winnow.errors import ConfigError
from winnow.registry import (FEATURISED, REPRESENTATION_NAMES as REPRESENTATIONS, canonical_selector,
                             representation_code, selector_code)
from winnow.data.records import METRIC_PATTERN
from winnow.settings import read_yaml_mapping
from winnow.steps import STEPS

BASELINES = ("zero_shot", "random", "full")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    query: str
    test: str
    val: str | None = Field(None, description="a validation split (never test): what the subset-utility "
                                              "correlation (``utility``) evaluates on, and the rows planted "
                                              "in the pool for planted recall")
    ceiling: str | None = Field(None, description="in-domain rows the ``ceiling`` baseline trains on (default: "
                                                  "the query rows repeated to the budget)")
    metric: str = Field("exact_match", pattern=METRIC_PATTERN[:-2] + "|response_loss)$",
                        description="an eval.metric (exact_match, token_f1, mc_accuracy, pass@1, ...) or response_loss")

    @property
    def eval_metric(self) -> str:
        """The metric the evaluation computes (response loss is measured beside every metric)."""
        return "exact_match" if self.metric == "response_loss" else self.metric


class Distance(_Strict):
    """The distance experiment: the pool ordered by ``representation``'s round-robin, cut into ``quantiles``
    equal parts; ``sample`` examples drawn from each part are trained on."""

    representation: Literal[FEATURISED] = "gradients"  # type: ignore[valid-type]
    quantiles: int = Field(4, ge=2)
    sample: int = Field(16, ge=1)
    seeds: list[int] | None = Field(None, description="seeds of the quantile cells (default: the grid's seeds)")


class Utility(_Strict):
    """The subset-utility correlation (LDS-style): ``subsets`` subsets of the budget's size, half drawn at random
    and half led by the representation's scores, each fine-tuned with one fixed seed and evaluated on the
    target's validation split; Spearman's ρ between their mean score and their metric says whether a higher
    score means a better model."""

    subsets: int = Field(8, ge=4)
    representation: Literal[FEATURISED] = "gradients"  # type: ignore[valid-type]
    budget: Budget | None = Field(None, description="default: the grid's first budget")
    seed: int = 0


class ExperimentConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    pool: str
    targets: list[Target] = Field(min_length=1)
    settings: str | None = Field(None, description="a winnow settings YAML (model, warm-up, features, fine-tune)")
    overrides: list[str] = []
    representations: list[Literal[REPRESENTATIONS]] = Field(  # type: ignore[valid-type]
        ["gradients"], description="'nice' = LESS pool features with NICE's policy-gradient query side (nice.metric)")
    selectors: list[str] = ["round_robin"]
    budgets: list[Budget] = Field([0.05], min_length=1, description="counts (14) or shares (0.05, '5%')")
    seeds: list[int] = Field([0], min_length=1)
    mixtures: list[Literal["taskpgm", "duet"]] = Field(
        [], description="mixture methods at the same budgets and seeds: TaskPGM's proportions, or a DUET search "
                        "(mixture.trials trials scored on the target's query set) — random inside each domain")
    baselines: list[Literal["zero_shot", "random", "full", "ceiling"]] = Field(
        list(BASELINES), description="'ceiling' trains on in-domain rows (a target's ceiling, or its query rows "
                                     "repeated to the budget) at every budget and seed: what selection could reach")
    full_seeds: list[int] | None = Field(None, description="seeds of the full-data baseline (default: seeds)")
    distance: Distance | None = None
    utility: Utility | None = None

    @model_validator(mode="after")
    def _utility_needs_validation(self) -> "ExperimentConfig":
        missing = [t.name for t in self.targets if self.utility is not None and not t.val]
        if missing:
            raise ValueError(f"utility: targets {', '.join(missing)} have no val split (the correlation is "
                             "measured on validation, never on test)")
        return self

    @field_validator("selectors")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return [canonical_selector(s) for s in v]


def load_experiment(path: str) -> ExperimentConfig:
    raw = read_yaml_mapping(path, "experiment")
    try:
        return ExperimentConfig.model_validate(raw)
    except (ValidationError, ValueError) as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()) \
            if isinstance(e, ValidationError) else str(e)
        raise ConfigError(f"{path}: {problems}") from None


@dataclass(frozen=True)
class Cell:
    target: str
    method: str            # "<representation>/<selector>", "mixture/<taskpgm|duet>", a baseline, or "quantile"
    representation: str    # "" for baselines
    selector: str          # "" for baselines
    budget: int | float    # requested: int = count, float = share (winnow.budget); 0 for zero-shot and full
    seed: int
    quantile: int = -1     # 0 = closest to the queries; -1 outside the distance experiment

    def key(self, inputs: dict[str, Any], settings: Any = None, models: tuple[Any, ...] = (),
            reference: str = "gradients") -> str:
        """The cell's artifact key: its own coordinates, the target's inputs (pool version, split digests), the
        settings slice, the models' content, and the code of what it runs, that is, the fine-tune and the
        evaluation, its representation and selector, the mixture methods for a mixture cell, and the reference
        ordering (``reference`` representation, round-robin) its distance is measured in. No other selector's or
        representation's code: an edit of one leaves every other cell cached."""
        return STEPS["cell"].key(inputs={**asdict(self), **inputs}, settings=settings, models=models,
                                 code=self.code(reference))

    def code(self, reference: str) -> tuple[str, ...]:
        if self.method in ("zero_shot", "ceiling"):  # no pool, no selection: the fine-tune and evaluation only
            return ()
        own: tuple[str, ...] = ()
        if self.representation == "mixture":
            own = ("winnow.mixture.build", "winnow.mixture.duet", "winnow.mixture.taskpgm", "winnow.mixture.affinity",
                   "winnow.mixture.influence")
        elif self.representation:
            own = (*representation_code(self.representation), *selector_code(self.selector))
        elif self.selector:
            own = selector_code(self.selector)
        return (*own, *representation_code(reference), *selector_code("round_robin"))


def plan_cells(cfg: ExperimentConfig) -> list[Cell]:
    """Every cell of the grid, baselines first (zero-shot has no seed or budget; full has no budget)."""
    cells: list[Cell] = []
    for t in cfg.targets:
        if "zero_shot" in cfg.baselines:
            cells.append(Cell(t.name, "zero_shot", "", "", 0, 0))
        if "full" in cfg.baselines:
            cells += [Cell(t.name, "full", "", "", 0, s) for s in (cfg.full_seeds or cfg.seeds)]
        for b in cfg.budgets:
            for s in cfg.seeds:
                if "random" in cfg.baselines:
                    cells.append(Cell(t.name, "random", "", "random", b, s))
                if "ceiling" in cfg.baselines:
                    cells.append(Cell(t.name, "ceiling", "", "", b, s))
                for rep in cfg.representations:
                    cells += [Cell(t.name, f"{rep}/{sel}", rep, sel, b, s) for sel in cfg.selectors]
                cells += [Cell(t.name, f"mixture/{mx}", "mixture", mx, b, s) for mx in cfg.mixtures]
        if cfg.distance:
            d = cfg.distance
            cells += [Cell(t.name, "quantile", d.representation, "round_robin", d.sample, s, q)
                      for q in range(d.quantiles) for s in (d.seeds or cfg.seeds)]
    return cells


def quantile_split(n: int, q: int) -> list[np.ndarray]:
    """Ranks 0..n-1 cut into ``q`` contiguous parts whose sizes differ by at most one (earlier parts larger)."""
    if q < 1 or q > n:
        raise ConfigError(f"distance.quantiles: {q} quantiles of a {n}-example pool")
    return [part for part in np.array_split(np.arange(n), q)]


def quantile_sample(order: np.ndarray, q: int, quantile: int, size: int, seed: int) -> np.ndarray:
    """``size`` pool indices drawn without replacement from the ``quantile``-th part of ``order``."""
    part = order[quantile_split(len(order), q)[quantile]]
    if size > len(part):
        raise ConfigError(f"distance.sample: {size} examples asked from a quantile of {len(part)}")
    return np.sort(np.random.default_rng([seed, quantile]).choice(part, size=size, replace=False))


def cell_row(cell: Cell, result: dict[str, Any]) -> dict[str, Any]:
    """A results-table row: every setting of the cell and every measured value."""
    return {**asdict(cell), **result}
