"""DUET ask/tell: valid proportions, exact budgets, warm starts, and resumption after a kill between ask and tell."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from winnow.mixture.duet import Duet
from winnow.mixture.simplex import allocate, apply_floor, from_unit_cube, to_unit_cube

DOMAINS = ["code", "math", "chat"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=12), st.integers(1, 500), st.floats(0.0, 0.3))
def test_parameterisation_and_budget_are_always_valid(u, budget, floor) -> None:
    p = apply_floor(from_unit_cube(np.array(u)), floor)
    assert (p >= 0).all() and p.sum() == pytest.approx(1.0) and ((p == 0) | (p >= floor - 1e-12)).all()
    available = np.full(len(u), 1000)
    counts = allocate(budget, p, available)
    assert counts.sum() == budget and (counts >= 0).all()


def test_allocation_respects_domain_sizes_and_round_trip() -> None:
    counts = allocate(100, np.array([0.7, 0.2, 0.1]), np.array([30, 100, 100]))
    assert counts.tolist()[0] == 30 and counts.sum() == 100
    with pytest.raises(ValueError, match="exceeds"):
        allocate(500, np.array([0.5, 0.5]), np.array([100, 100]))
    p = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(from_unit_cube(to_unit_cube(p)), p)


def test_floor_renormalises() -> None:
    np.testing.assert_allclose(apply_floor(np.array([0.6, 0.37, 0.03]), 0.05), [0.6 / 0.97, 0.37 / 0.97, 0.0])
    # a floor above every (tied) share: one domain takes all, so every kept share meets the floor
    np.testing.assert_allclose(apply_floor(np.full(4, 0.25), 0.28125), [1.0, 0.0, 0.0, 0.0])


def test_warm_starts_then_search(tmp_path) -> None:
    duet = Duet("s", str(tmp_path / "optuna.db"), DOMAINS, sampler="tpe")
    duet.enqueue([1, 1, 1], "uniform")
    duet.enqueue([0.6, 0.3, 0.1], "taskpgm")
    first, second = duet.suggest(), None
    np.testing.assert_allclose(first.proportions, [1 / 3] * 3, atol=1e-9)
    duet.observe(first.trial, 0.4)
    second = duet.suggest()
    np.testing.assert_allclose(second.proportions, [0.6, 0.3, 0.1], atol=1e-9)
    duet.observe(second.trial, 0.7)
    for _ in range(4):
        p = duet.suggest()
        duet.observe(p.trial, 1.0 - abs(p.proportions[0] - 0.6))
    best, score = duet.best()
    assert score >= 0.7 and len(duet.study.trials) == 6
    with pytest.raises(ValueError, match="created for domains"):
        Duet("s", str(tmp_path / "optuna.db"), ["a", "b"])


def test_killed_between_ask_and_tell_resumes_without_loss_or_duplicate(tmp_path) -> None:
    db = str(tmp_path / "optuna.db")
    code = textwrap.dedent(f"""
        import os, signal
        from winnow.mixture.duet import Duet
        d = Duet("kill", {db!r}, {DOMAINS!r}, sampler="tpe")
        p = d.suggest()
        d.observe(p.trial, 0.5)
        p = d.suggest()          # asked ...
        print(p.trial, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)   # ... and killed before tell
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == -signal.SIGKILL
    asked = int(proc.stdout.split()[0])
    duet = Duet("kill", db, DOMAINS, sampler="tpe")
    again = duet.suggest()
    assert again.trial == asked  # the asked trial is handed out again, not a new one
    duet.observe(again.trial, 0.8)
    nxt = duet.suggest()
    assert nxt.trial == asked + 1
    states = [t.state.name for t in duet.study.trials]
    assert states == ["COMPLETE", "COMPLETE", "RUNNING"] and len({t.number for t in duet.study.trials}) == 3


def test_gp_sampler_proposes_valid_mixtures(tmp_path) -> None:
    duet = Duet("gp", str(tmp_path / "optuna.db"), DOMAINS, sampler="gp", seed=1)
    for _ in range(6):
        p = duet.suggest()
        assert sum(p.proportions) == pytest.approx(1.0) and min(p.proportions) >= 0
        duet.observe(p.trial, -abs(p.raw[1] - 0.5))
    assert len(duet.study.trials) == 6
