"""The selectors and the representations by name: where each one lives, its aliases, what it needs. Names only.

Why names and not objects: the code version of an artifact (``winnow.keys``) must cover the selector or the
representation that made it and no other. A registry that imported every selector would put all of them into
the key of anything that looks one up, so an edit of KNN-KDE re-ran round-robin experiments and re-featurised
pools. Here a step asks for ``selector_code(name)`` or ``representation_code(name)`` and gets that one's module;
``selector_fn`` and ``representation`` import it when it is used. Settings, the CLI's ``--help`` and the tuning
space take their choices from ``SELECTOR_NAMES`` and ``REPRESENTATION_NAMES``.

Every selector is a pure function ``(similarity (M, N), *, limit, seed, query_groups[, pool_similarity]) ->
Ordering``: a full ranking of the pool (or its first ``limit``), so any budget is a prefix. A representation
class (one per module: ``gradients``, ``hidden_states``, ``embeddings``) says how wide its vectors are
(``dim``), what made them (``provenance``, hashed into its table's name), which checkpoints it has and how to
compute a batch (``compute``); ``winnow.features.shards`` runs any of them shard by shard. ``nice`` is a query
side (NICE's policy gradient) paired with the LESS pool gradients, so it has no class of its own.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from winnow.errors import ConfigError


# ---------------------------------------------------------------------------------------------- selectors
@dataclass(frozen=True)
class SelectorSpec:
    name: str
    module: str
    function: str
    what: str
    aliases: tuple[str, ...] = ()
    needs_pool_similarity: bool = False  # also takes pool_similarity(rows, cols) -> (n, n)
    targeted: bool = True  # False: ignores the query set (random, all)


SELECTORS: dict[str, SelectorSpec] = {s.name: s for s in (
    SelectorSpec("round_robin", "winnow.selection.round_robin", "select_round_robin",
                 "each query in turn takes its most similar example left", ("rr",)),
    SelectorSpec("doubly_greedy", "winnow.selection.greedy", "select_doubly_greedy",
                 "examples by their best similarity to any query", ("dg",)),
    SelectorSpec("subtask_topk", "winnow.selection.greedy", "select_subtask_topk",
                 "LESS: mean over each subtask's queries, then max over subtasks", ("subtask",)),
    SelectorSpec("uot", "winnow.selection.transport", "select_uot", "unbalanced optimal transport mass"),
    SelectorSpec("knn_uniform", "winnow.selection.knn", "select_knn_uniform",
                 "TSDS: uniform mass over each query's K nearest", ("knn-uniform",)),
    SelectorSpec("knn_kde", "winnow.selection.knn", "select_knn_kde",
                 "TSDS: mass over the K nearest, down-weighted by density", ("knn-kde",), needs_pool_similarity=True),
    SelectorSpec("random", "winnow.selection.random", "select_random", "a seeded random order", targeted=False),
    SelectorSpec("all", "winnow.selection.greedy", "select_all", "the whole pool (full-data baseline)",
                 targeted=False),
)}
ALIASES = {a: s.name for s in SELECTORS.values() for a in s.aliases}
SELECTOR_NAMES: tuple[str, ...] = tuple(SELECTORS)


def canonical_selector(name: str, key: str = "selection.selector") -> str:
    """The registry's spelling of a selector (aliases such as ``rr`` are accepted), or a one-line error listing
    the choices."""
    name = ALIASES.get(name, name)
    if name not in SELECTORS:
        raise ConfigError(f"{key}: unknown selector {name!r}; choose from {', '.join(SELECTOR_NAMES)}")
    return name


def selector_fn(name: str) -> Callable[..., Any]:
    spec = SELECTORS[canonical_selector(name)]
    return getattr(importlib.import_module(spec.module), spec.function)


def selector_code(name: str) -> tuple[str, ...]:
    """The module that computes ``name``'s ordering: what its selections' keys version."""
    return (SELECTORS[canonical_selector(name)].module,)


# ---------------------------------------------------------------------------------------- representations
class Representation(Protocol):
    name: str
    needs_warmup: bool

    def table_prefix(self, job: Any) -> str: ...
    def dim(self, job: Any) -> int: ...
    def provenance(self, job: Any) -> dict[str, Any]: ...
    def checkpoint_indices(self, job: Any) -> list[int]: ...
    def compute(self, job: Any, records: list[Any], checkpoint: int, progress: bool
                ) -> tuple[np.ndarray, np.ndarray, list[int]]: ...


@dataclass(frozen=True)
class RepresentationSpec:
    name: str
    module: str
    cls: str  # "" for a query side without shards of its own
    what: str
    pool: str = ""  # the representation whose pool features it pairs with ("" = its own)


REPRESENTATIONS: dict[str, RepresentationSpec] = {r.name: r for r in (
    RepresentationSpec("gradients", "winnow.features.gradients", "GradientFeatures",
                       "LESS: per-example LoRA gradients at each warm-up checkpoint, projected"),
    RepresentationSpec("hidden", "winnow.features.hidden_states", "HiddenStates",
                       "RDS+: the base model's position-weighted last hidden layer"),
    RepresentationSpec("embedding", "winnow.features.embeddings", "SentenceEmbeddings",
                       "a sentence-transformers embedding of the whole example"),
    RepresentationSpec("nice", "winnow.nice.pipeline", "", "NICE: policy-gradient query side of the target metric "
                       "against the LESS pool gradients", pool="gradients"),
)}
REPRESENTATION_NAMES: tuple[str, ...] = tuple(REPRESENTATIONS)
FEATURISED: tuple[str, ...] = tuple(n for n, r in REPRESENTATIONS.items() if r.cls)  # with shards of their own


def canonical_representation(name: str, key: str = "representation") -> str:
    if name not in REPRESENTATIONS:
        raise ConfigError(f"{key}: unknown representation {name!r}; choose from {', '.join(REPRESENTATION_NAMES)}")
    return name


def representation(name: str) -> Representation:
    spec = REPRESENTATIONS[canonical_representation(name)]
    if not spec.cls:
        raise ConfigError(f"representation: {name!r} has no pool features of its own (it pairs with {spec.pool!r})")
    return getattr(importlib.import_module(spec.module), spec.cls)()


def representation_code(name: str) -> tuple[str, ...]:
    """The module whose code computes ``name``'s vectors (with the shard runner): what its tables' keys version."""
    spec = REPRESENTATIONS[canonical_representation(name)]
    paired = (REPRESENTATIONS[spec.pool].module,) if spec.pool else ()
    return ("winnow.features.shards", *paired, spec.module)


def shard_representation(name: str) -> str:
    """The representation whose shards ``name`` needs (``nice`` pairs with the gradients)."""
    spec = REPRESENTATIONS[canonical_representation(name)]
    return spec.pool or spec.name
