"""The tuning study: an Optuna ask/tell study that several processes may work on at once, and that a killed run
resumes without losing or repeating a trial.

Each trial records its owner (``host:pid``) when asked. On the next ``next_trial``, a trial still RUNNING whose
owner is a dead process on this host is failed and re-queued with the same parameters (``retry_of`` says
which), so it runs exactly once more; a RUNNING trial of a live process (a second worker) is left alone.
Trials of other hosts are never judged dead from here: with workers on several machines use an RDB storage,
where each worker sees the others' trials as they are. The pruner is the study's (median or Hyperband), and a
trial's intermediate values are its validation score after each fine-tune epoch, reported from whichever
process trains it (``epoch_reporter``).
"""
from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from winnow.errors import ConfigError
from winnow.hashing import text_digest
from winnow.mixture.duet import storage_for
from winnow.settings import TuneSettings
from winnow.tune.space import grid_points

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(who: str) -> bool:
    host, _, pid = who.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's worker: not ours to judge
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _pruner(tune: TuneSettings, max_epochs: int) -> optuna.pruners.BasePruner:
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=tune.startup_trials, n_warmup_steps=0)
    if tune.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, max_epochs), reduction_factor=3)
    return optuna.pruners.NopPruner()


def _sampler(tune: TuneSettings) -> optuna.samplers.BaseSampler:
    if tune.sampler in ("random", "grid"):  # a grid's points are all enqueued (``enqueue_grid``)
        return optuna.samplers.RandomSampler(seed=tune.seed)
    if tune.sampler == "gp":
        return optuna.samplers.GPSampler(seed=tune.seed, n_startup_trials=3)
    return optuna.samplers.TPESampler(seed=tune.seed, n_startup_trials=3)


def space_digest(tune: TuneSettings, fixed: dict[str, Any]) -> str:
    """What a study's trials are comparable under: its space and everything the space leaves fixed."""
    return text_digest([tune.model_dump_json(include={"space", "score"}), repr(sorted(fixed.items()))])


def open_study(name: str, storage: str, tune: TuneSettings, max_epochs: int, signature: str) -> optuna.Study:
    """Create or load ``name``; a study made for another space, data or evaluation is refused, not mixed."""
    study = optuna.create_study(study_name=name, storage=storage_for(storage), direction="maximize",
                                sampler=_sampler(tune), pruner=_pruner(tune, max_epochs), load_if_exists=True)
    stored = study.user_attrs.get("signature")
    if stored is None:
        study.set_user_attr("signature", signature)
    elif stored != signature:
        raise ConfigError(f"--study: study {name!r} in {storage} was made for another search space, pool, target "
                          "or evaluation; pick another --study name")
    return study


def next_trial(study: optuna.Study, dists: dict[str, optuna.distributions.BaseDistribution],
               n_trials: int) -> optuna.Trial | None:
    """The next trial to run here, or None when the study has its ``n_trials`` finished trials (counting those
    other live workers are running). Trials orphaned by a dead process are re-queued first."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = t.user_attrs.get("owner", "")
        if who and not _alive(who):
            study.tell(t.number, state=TrialState.FAIL)
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
    trials = study.get_trials(deepcopy=False)
    done = sum(t.state in FINISHED for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    if done + running >= n_trials:
        return None
    trial = study.ask(dists)
    trial.set_user_attr("owner", owner())
    # Two workers may both have seen one free place: the later-numbered trial gives it up (marked, not run).
    ahead = sum((t.state in FINISHED or t.state == TrialState.RUNNING) and t.number < trial.number
                and not t.user_attrs.get("surplus") for t in study.get_trials(deepcopy=False))
    if ahead >= n_trials:
        trial.set_user_attr("surplus", True)
        study.tell(trial, state=TrialState.FAIL)
        return None
    return trial


def enqueue_grid(study: optuna.Study, tune: TuneSettings) -> None:
    """A new grid study gets every point of the grid queued, so asking runs them in order (Optuna's GridSampler
    calls ``Study.stop`` after the last point, which ask/tell cannot take)."""
    if not study.get_trials(deepcopy=False):
        for point in grid_points(tune):
            study.enqueue_trial(point)


def trial_id(study: optuna.Study, number: int) -> int:
    """Optuna's storage id of a trial (what a process other than the asker needs to report to it)."""
    return study.get_trials(deepcopy=False)[number]._trial_id


def epoch_reporter(name: str, storage: str, tune: TuneSettings, max_epochs: int,
                   trial: int) -> Callable[[int, float], bool]:
    """For the process that trains trial ``trial``: ``report(epoch, value)`` records the validation score as the
    trial's intermediate value and says whether the study's pruner stops it there."""
    study = optuna.load_study(study_name=name, storage=storage_for(storage), pruner=_pruner(tune, max_epochs),
                              sampler=_sampler(tune))
    handle = optuna.trial.Trial(study, trial_id(study, trial))

    def report(epoch: int, value: float) -> bool:
        handle.report(float(value), step=epoch)
        return bool(handle.should_prune())

    return report


def importances(study: optuna.Study, seed: int = 0) -> dict[str, float] | str:
    """fANOVA importance of each parameter over the finished trials, or why it cannot be computed yet."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if len(complete) < 2 or len({t.value for t in complete}) < 2:
        return "needs at least two complete trials with different scores"
    try:
        return {k: round(float(v), 4) for k, v in optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed)).items()}
    except (ValueError, RuntimeError) as e:
        return f"not computed: {e}"


def latest_of(storage: str, family: str) -> tuple[str, int] | None:
    """The newest study of a family (``winnow tune --study NAME`` and the re-tunes after the pool grew) and the
    pool size it was tuned on."""
    summaries = optuna.get_all_study_summaries(storage=storage_for(storage), include_best_trial=False)
    mine = [(int(s.user_attrs.get("pool_rows", 0)), s.study_name) for s in summaries
            if s.user_attrs.get("family") == family]
    return (max(mine)[1], max(mine)[0]) if mine else None


def dashboard_arg(storage: str) -> str:
    """What to hand ``optuna-dashboard`` for this storage (it takes RDB URLs and journal files as they are)."""
    url = storage_for(storage)
    return url if isinstance(url, str) else storage
