"""DUET's outer loop as a resumable ask/tell over an Optuna study.

Each round proposes mixture proportions r on the simplex, someone trains and scores a model on that mixture
(possibly a person rating it, hours later), and the score is told back. Proportions are parameterised as
normalised exponentials of K unit-interval coordinates (``winnow.mixture.simplex.from_unit_cube``: uniform
coordinates give the uniform distribution on the simplex); shares under ``floor`` are zeroed and the rest
renormalised. Raw coordinates and both proportion vectors are stored as trial attributes.

Resumption: a trial that was asked but never told (the process died in between) is handed out again by the
next ``suggest`` instead of a new one, so no trial is lost or duplicated. A study persists in any Optuna
storage (SQLite file by default, an RDB URL, or a journal file).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import time

import numpy as np
import optuna

from winnow.errors import ConfigError
from winnow.mixture.simplex import apply_floor, from_unit_cube, to_unit_cube


@dataclass(frozen=True)
class Proposal:
    trial: int
    raw: list[float]  # the simplex point before the floor
    proportions: list[float]  # after the floor, renormalised: what to train on


def post_feedback(storage: str, study_name: str, trial: int, score: float) -> None:
    """Tell a trial's score from outside the flow (a user rating, a benchmark run elsewhere)."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage_for(storage))
    except KeyError:
        names = optuna.get_all_study_names(storage=storage_for(storage))
        raise ConfigError(f"--study: no study {study_name!r} in {storage} (studies: {', '.join(names) or 'none'})") from None
    waiting = [t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))]
    if trial not in waiting:
        raise ConfigError(f"--trial: trial {trial} of study {study_name!r} is not waiting for a score "
                          f"(waiting: {', '.join(map(str, waiting)) or 'none'})")
    if not np.isfinite(score):
        raise ConfigError(f"--score: must be a finite number, got {score}")
    study.tell(trial, float(score))


def storage_for(url: str) -> optuna.storages.BaseStorage | str:
    """An RDB URL as is; a ``*.log``/``*.jsonl`` path as a journal file; anything else as a SQLite file."""
    if "://" in url:
        return url
    if url.endswith((".log", ".jsonl")):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url))
    return f"sqlite:///{url}"


class Duet:
    def __init__(self, study_name: str, storage: str, domains: Sequence[str], *, floor: float = 0.05,
                 sampler: str = "gp", seed: int = 0):
        self.domains, self.floor = list(domains), floor
        samp = (optuna.samplers.GPSampler(seed=seed, n_startup_trials=3) if sampler == "gp"
                else optuna.samplers.TPESampler(seed=seed))
        self.study = optuna.create_study(study_name=study_name, storage=storage_for(storage), direction="maximize",
                                         sampler=samp, load_if_exists=True)
        stored = self.study.user_attrs.get("domains")
        if stored is None:
            self.study.set_user_attr("domains", self.domains)
        elif stored != self.domains:
            raise ConfigError(f"study {study_name!r} was created for domains {stored}, not {self.domains}; "
                              f"pick another --study name")

    def _keys(self) -> list[str]:
        return [f"u{i}" for i in range(len(self.domains))]

    def enqueue(self, proportions: Sequence[float], label: str) -> None:
        """Warm start with a known mixture (uniform, size-proportional, TaskPGM), evaluated before search."""
        u = to_unit_cube(np.asarray(proportions, dtype=np.float64) / np.sum(proportions))
        self.study.enqueue_trial(dict(zip(self._keys(), u.tolist())), user_attrs={"warm_start": label})

    def suggest(self) -> Proposal:
        """The next mixture to try: a trial asked earlier but never told, else a new one."""
        pending = [t for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))]
        if pending:
            t = min(pending, key=lambda t: t.number)
            return Proposal(t.number, t.user_attrs["raw"], t.user_attrs["proportions"])
        trial = self.study.ask({k: optuna.distributions.FloatDistribution(1e-6, 1.0) for k in self._keys()})
        raw = from_unit_cube(np.array([trial.params[k] for k in self._keys()]))
        prop = apply_floor(raw, self.floor)
        trial.set_user_attr("raw", raw.tolist())
        trial.set_user_attr("proportions", prop.tolist())
        return Proposal(trial.number, raw.tolist(), prop.tolist())

    def observe(self, trial: int, score: float) -> None:
        """Tell a trial's score (a benchmark number or a user rating)."""
        self.study.tell(trial, float(score))

    def wait(self, trial: int, timeout_s: float, poll_s: float = 2.0) -> float:
        """Block until someone tells ``trial``'s score (``winnow feedback``), then return it."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            t = self.study.get_trials(deepcopy=False)[trial]
            if t.state == optuna.trial.TrialState.COMPLETE:
                return float(t.value)
            time.sleep(poll_s)
        raise TimeoutError(f"no score for trial {trial} of study {self.study.study_name!r} after {timeout_s:.0f} s")

    def best(self) -> tuple[list[float], float]:
        t = self.study.best_trial
        return t.user_attrs["proportions"], float(t.value)
