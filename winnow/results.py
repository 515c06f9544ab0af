"""What each step hands the next: small frozen records of names, counts and digests, never arrays.

Steps once handed each other dicts: 107 string subscripts in one runner, a table's kind parsed back out of its
name, and a misspelt key was a KeyError three steps later. These are the step results of ``winnow.steps``;
they pickle through Prefect's result store and Dask, and a renderer in ``winnow.reports`` reads their fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class ReadReport:
    """How one file (or store table) was read: counts that add up, and why each rejected record was rejected."""

    path: str
    n_in: int
    used: int
    quarantined: int
    quarantine: tuple[dict[str, Any], ...] = ()  # {path, line, field, reason} per rejected record
    reasons: dict[str, int] = field(default_factory=dict)  # quarantine counts per kind of reason
    read_as: dict[str, str] = field(default_factory=dict)  # compression, encoding, container
    layouts: dict[str, int] = field(default_factory=dict)  # records per detected layout
    defaulted: dict[str, int] = field(default_factory=dict)  # records that took a default source / task

    @classmethod
    def of(cls, result: Any) -> "ReadReport":
        """From a ``winnow.data.records.LoadResult``."""
        from dataclasses import asdict

        return cls(path=result.path, n_in=result.n_in, used=len(result.records), quarantined=len(result.quarantined),
                   quarantine=tuple(asdict(q) for q in result.quarantined), reasons=result.reasons(),
                   read_as=dict(result.read_as), layouts=dict(result.layouts), defaulted=dict(result.defaulted))


@dataclass(frozen=True)
class DataSet:
    """A set in the store: its table (named by content, ``winnow.store.ingest.table_name_for``), version and
    size, and how the file behind it was read."""

    read: ReadReport
    table: str
    version: int
    rows: int
    added: int = 0
    not_in_file: int = 0  # ids the (append-only) table holds that the file lacks


@dataclass(frozen=True)
class Warmup:
    """LESS's warm-up: the checkpoints the gradient features are taken at, and their weights."""

    key: str
    dir: str
    space: str  # the feature space: this warm-up, kept while the pool grows
    version: int  # the pool table version it sampled
    n_examples: int
    checkpoints: tuple[int, ...]
    weights: tuple[float, ...]
    status: str = "computed"  # computed / reused / kept: ...


@dataclass(frozen=True)
class FeatureTables:
    """One representation's tables: the pool's and the query side's, the checkpoint weights, and a prefilter
    cascade when one chose the rows that have pool features."""

    representation: str
    pool: str
    query: str
    weights: tuple[float, ...] | None = None
    cascade: str = ""
    prefilter: str = ""  # the representation that ranked the whole pool for the cascade


@dataclass(frozen=True)
class Cascade:
    table: str
    prefilter: str
    pool_rows: int
    candidates: int
    tail_rows: int


@dataclass(frozen=True)
class Features:
    """Every representation's tables for one pool and query set, and what featurising them cost."""

    tables: dict[str, FeatureTables]
    warmup: Warmup | None
    shards: int
    computed: int
    projector: str
    dim: int
    seconds: float
    warmup_seconds: float = 0.0
    cascade: Cascade | None = None
    nice: dict[str, Any] | None = None  # NICE's per-query reward table (winnow.nice.pipeline)

    @property
    def skipped(self) -> int:
        return self.shards - self.computed

    def of(self, representation: str) -> FeatureTables:
        return self.tables[representation] if representation in self.tables else next(iter(self.tables.values()))


@dataclass(frozen=True)
class Subset:
    """A budget's prefix of an ordering, written as a JSONL file; ``digest`` (of its ids, in order) keys the
    fine-tune, so the same examples never train twice."""

    name: str
    selector: str
    path: str
    digest: str
    size: int
    pool_size: int
    sources: dict[str, int]
    pool_sources: dict[str, int]
    distances: dict[str, float] = field(default_factory=dict)
    decontamination: dict[str, Any] | None = None
    ordering: str = ""  # the full ordering's parquet ("" for a subset given by rows)
    candidates: int | None = None  # under a prefilter cascade: the rows the selector ordered
    top_scores: tuple[float, ...] = ()
    excluded_rows: tuple[int, ...] = ()  # rows left out as copies of a held-out item (subsets given by rows)

    @property
    def excluded(self) -> int:
        return int((self.decontamination or {}).get("excluded", 0))


@dataclass(frozen=True)
class Evaluation:
    """One model on one split: the target's metric, the response loss, and every prediction."""

    metric: str
    score: float
    response_loss: float
    n: int
    predictions: tuple[dict[str, Any], ...] = ()
    counters: dict[str, int] = field(default_factory=dict)
    by_metric: dict[str, dict[str, float]] = field(default_factory=dict)
    lm_eval: dict[str, dict[str, float]] = field(default_factory=dict)

    def scores(self) -> dict[str, float]:
        """The numbers a table shows: the metric first, the response loss beside it."""
        return {self.metric: round(self.score, 4), "response_loss": round(self.response_loss, 4)}

    def with_harness(self, lm_eval: dict[str, dict[str, float]]) -> "Evaluation":
        return replace(self, lm_eval=lm_eval)


@dataclass(frozen=True)
class Split:
    """A validation split carved out of a test file by id (a search never sees its final number's records)."""

    val: str
    test: str
    n_val: int
    n_test: int
    how: str = ""


@dataclass(frozen=True)
class TargetFile:
    """A query, validation or test file as later steps read it (a canonical copy under ``data.target``'s layout
    and map), and how the user's original was read."""

    path: str
    read: ReadReport


@dataclass(frozen=True)
class Space:
    """The feature space a pool table's features live in: the warm-up that defines it, kept while the pool grows
    (``kept``), or a new one on this table version."""

    space: str
    key: str
    dir: str
    version: int
    kept: bool


@dataclass(frozen=True)
class FeaturePlan:
    """A representation's table for one role, and the row ranges (shards) that fill it."""

    job: Any  # winnow.features.job.FeatureJob
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ShardDone:
    table: str
    start: int
    end: int
    rows: int
    computed: int
    skipped_checkpoints: int


@dataclass(frozen=True)
class Domains:
    """A pool split by source (or task) into trainable and held-out files, less copies of held-out items."""

    names: tuple[str, ...]
    train: dict[str, str]
    heldout: dict[str, str]
    sizes: dict[str, int]
    digests: dict[str, str]
    decontamination: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecipeRun:
    """What running a recipe's chain produced (``flows.steps.run_recipe``): the data read, the features, one
    subset, adapter and evaluation per arm (and for the base model), and what each artifact cost or reused."""

    data: dict[str, DataSet]
    reads: dict[str, ReadReport]  # every set's read report, the held-out splits' too
    features: Features
    subsets: dict[str, Subset]
    adapters: dict[str, str]
    evals: dict[str, Evaluation]
    artifacts: tuple[dict[str, str], ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
