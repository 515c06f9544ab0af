"""Parity with the TIS reference selectors (dcml-lab/targeted-instruction-selection, commit c1dc028): their
own outputs on fixed inputs (tests/data/parity/tis/README.md), compared index for index over the first
k = N // 4 of each ordering."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from winnow.registry import selector_fn
from winnow.selection.similarity import weighted_similarity

DATA = Path(__file__).resolve().parents[2] / "data" / "parity" / "tis"
CASES = json.loads((DATA / "tis_parity_orderings.json").read_text())["cases"]
INPUTS = np.load(DATA / "tis_parity_inputs.npz")


@pytest.mark.parametrize("selector", ["round_robin", "doubly_greedy", "uot", "knn_uniform", "knn_kde"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_first_k_equal_the_reference(case: dict, selector: str) -> None:
    name, k = case["name"], case["k"]
    S = INPUTS[f"{name}_S"]
    w = np.asarray(case["checkpoint_weights"], dtype=np.float32)
    pool = np.stack([INPUTS[f"{name}_pool_{c}"] for c in range(case["checkpoints"])]).astype(np.float32)
    query = np.stack([INPUTS[f"{name}_query_{c}"] for c in range(case["checkpoints"])]).astype(np.float32)
    np.testing.assert_allclose(weighted_similarity(query, pool, w), S, atol=1e-5)  # the inputs mean what they say
    extra = {"pool_similarity": lambda r, c: weighted_similarity(pool[:, r], pool[:, c], w)} if selector == "knn_kde" else {}
    got = selector_fn(selector)(S, seed=0, **extra).indices[:k].tolist()
    assert got == case[selector], f"{selector} on {name}: first difference at {_first_diff(got, case[selector])}"


def _first_diff(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
