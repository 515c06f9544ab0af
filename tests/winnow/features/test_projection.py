"""Projection: inner products kept within the JL bound, same seed same map, never a dense D × d matrix."""
from __future__ import annotations

import math

import pytest
import torch

from winnow.features.projection import DENSE_BLOCK, Projector
from winnow.settings import FeatureSettings


DEFAULT_NNZ = FeatureSettings().sjlt_nnz  # the JL test always covers the shipped default


@pytest.mark.parametrize("kind, nnz, tails", [("sjlt", DEFAULT_NNZ, "normal"), ("sjlt", DEFAULT_NNZ, "heavy"),
                                              ("sjlt", 2, "normal"), ("rademacher", 1, "normal"),
                                              ("rademacher", 1, "heavy"), ("gaussian", 1, "normal")])
def test_inner_products_preserved_within_jl_bound(kind: str, nnz: int, tails: str) -> None:
    torch.manual_seed(0)
    D, d, n = 6000, 2048, 12
    # heavy: Student-t with 3 degrees of freedom, a few coordinates carry much of the norm (like real gradients)
    x = torch.randn(n, D) if tails == "normal" else torch.distributions.StudentT(3.0).sample((n, D))
    x[1] = x[0] + 0.3 * x[2]  # a correlated pair
    p = Projector(kind, d, seed=3, nnz=nnz).project("m", x)
    G, Gp = x @ x.T, p @ p.T
    norms = x.norm(dim=1)
    err = (Gp - G).abs() / (norms[:, None] * norms[None, :])
    # JL: |<Px,Py> - <x,y>| <= eps |x||y| with eps ~ c * sqrt(log n / d); c = 4 is a generous constant.
    assert err.max() < 4 * math.sqrt(math.log(n) / d), float(err.max())


def test_same_seed_same_projection_and_seed_matters() -> None:
    x = torch.randn(3, 5000)
    a = Projector("sjlt", 256, seed=7).project("layer.0", x)
    b = Projector("sjlt", 256, seed=7).project("layer.0", x)
    c = Projector("sjlt", 256, seed=8).project("layer.0", x)
    d = Projector("sjlt", 256, seed=7).project("layer.1", x)
    assert torch.equal(a, b) and not torch.allclose(a, c) and not torch.allclose(a, d)


def test_dense_projection_is_blockwise_and_linear() -> None:
    D = DENSE_BLOCK + 123  # crosses a block boundary
    x, y = torch.randn(2, D), torch.randn(2, D)
    proj = Projector("rademacher", 64, seed=0)
    torch.testing.assert_close(proj.project("m", x + y), proj.project("m", x) + proj.project("m", y),
                               rtol=1e-4, atol=1e-4)


def test_unknown_projector_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown projector"):
        Projector("dense-fallback", 8, 0).project("m", torch.randn(1, 4))
