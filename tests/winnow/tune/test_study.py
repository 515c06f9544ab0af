"""The tuning study on real Optuna storage: a trial orphaned by a killed process runs again with the same
values (once), two processes share one study without running more trials than asked, and the pruner stops a
trial that reports a worse epoch than the median, from a process other than the one that asked for it."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
from optuna.trial import TrialState

from winnow.settings import TuneSettings
from winnow.tune.study import epoch_reporter, next_trial, open_study

ROOT = Path(__file__).resolve().parents[3]
TUNE = TuneSettings(sampler="random", pruner="median", startup_trials=1)
DISTS = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}


def _script(storage: Path, body: str) -> str:
    return textwrap.dedent(f"""
        import optuna, os, sys, time
        from winnow.settings import TuneSettings
        from winnow.tune.study import next_trial, open_study
        st = open_study("s", {str(storage)!r}, TuneSettings(sampler="random"), 1, "sig")
        dists = {{"x": optuna.distributions.FloatDistribution(0.0, 1.0)}}
    """) + textwrap.dedent(body)


def _run(storage: Path, body: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _script(storage, body)], cwd=ROOT)


def test_a_killed_workers_trial_runs_again_once_with_its_values(tmp_path: Path) -> None:
    storage = tmp_path / "study.db"
    killed = _run(storage, "t = next_trial(st, dists, 3)\nprint(t.params['x'])\nos._exit(9)  # killed mid-trial\n")
    assert killed.wait(60) == 9
    st = open_study("s", str(storage), TUNE, 1, "sig")
    orphan = st.get_trials(deepcopy=False)[0]
    assert orphan.state == TrialState.RUNNING
    seen = []
    while (t := next_trial(st, DISTS, 3)) is not None:
        seen.append(t)
        st.tell(t, t.params["x"])
    assert seen[0].params == orphan.params and st.get_trials(deepcopy=False)[seen[0].number].user_attrs["retry_of"] == 0
    states = [t.state for t in st.get_trials(deepcopy=False)]
    assert states.count(TrialState.COMPLETE) == 3 and states.count(TrialState.FAIL) == 1  # the orphan, failed
    assert TrialState.RUNNING not in states


def test_two_processes_share_one_study_and_stop_at_its_size(tmp_path: Path) -> None:
    storage = tmp_path / "study.db"
    open_study("s", str(storage), TUNE, 1, "sig")
    body = ("while (t := next_trial(st, dists, 8)) is not None:\n"
            "    time.sleep(0.3)\n    st.tell(t, t.params['x'])\n")
    workers = [_run(storage, body) for _ in range(2)]
    assert [w.wait(120) for w in workers] == [0, 0]
    trials = optuna.load_study(study_name="s", storage=f"sqlite:///{storage}").get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 8
    assert len({t.user_attrs["owner"] for t in complete}) == 2  # both processes ran trials of the one study
    assert len({t.number for t in complete}) == 8


def test_the_median_pruner_stops_a_worse_epoch_reported_from_elsewhere(tmp_path: Path) -> None:
    storage = str(tmp_path / "study.db")
    st = open_study("s", storage, TUNE, 3, "sig")
    first = next_trial(st, DISTS, 5)
    for epoch in (1, 2, 3):
        first.report(1.0, epoch)
    st.tell(first, 1.0)
    worse, better = next_trial(st, DISTS, 5), next_trial(st, DISTS, 5)
    # the reporter loads the study itself, as the process that trains a trial does
    assert epoch_reporter("s", storage, TUNE, 3, worse.number)(1, 0.2) is True
    assert epoch_reporter("s", storage, TUNE, 3, better.number)(1, 1.5) is False
    assert st.get_trials(deepcopy=False)[worse.number].intermediate_values == {1: 0.2}


def test_a_grid_study_runs_every_point_once(tmp_path: Path) -> None:
    from winnow.settings import ParamSpec
    from winnow.tune.space import distributions
    from winnow.tune.study import enqueue_grid

    tune = TuneSettings(sampler="grid", pruner="none", grid_points=3,
                        space={"selection.selector": ParamSpec(choices=("round_robin", "knn_uniform")),
                               "finetune.epochs": ParamSpec(low=1, high=3)})
    st = open_study("g", str(tmp_path / "g.db"), tune, 3, "sig")
    enqueue_grid(st, tune)
    enqueue_grid(st, tune)  # a resumed grid study queues nothing twice
    seen = []
    while (t := next_trial(st, distributions(tune.space), 6)) is not None:
        seen.append((t.params["selection.selector"], t.params["finetune.epochs"]))
        st.tell(t, 0.0)
    assert sorted(seen) == sorted((s, e) for s in ("round_robin", "knn_uniform") for e in (1, 2, 3))
