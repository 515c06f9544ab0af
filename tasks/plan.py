"""The planner's tasks: a short probe of this hardware (cached per model, settings and machine), and the encoded
lengths of a sample of the pool; the prediction itself is arithmetic (winnow.plan.plan)."""
from __future__ import annotations

import time

_T0 = time.perf_counter()  # before the imports a worker pays for too (torch, transformers, lance, the library)

import random  # noqa: E402
from typing import Any  # noqa: E402

from prefect import task  # noqa: E402

from tasks import step_task
from winnow.data.loaders import load_records
from winnow.fingerprint import ModelRef
from winnow.models.loading import load_tokenizer
from winnow.plan import Rates, probe, sample_lengths
from winnow.settings import ModelSettings, WinnowSettings
from winnow.store import lance, record_tables

SAMPLE = 1000  # pool records whose lengths stand for the pool's
# What importing this module cost the process that first did: in a fresh worker, what any worker pays before
# its first shard (the same torch, transformers, lance and library modules); ~0 in a warm process.
IMPORT_S = round(time.perf_counter() - _T0, 2)


def _sample(store_uri: str, pool_table: str, pool_rows: int) -> list:
    rows = sorted(random.Random(0).sample(range(pool_rows), min(pool_rows, SAMPLE)))
    return record_tables.records_at(lance.connect(store_uri), pool_table, rows)


@step_task("probe", where=("store_uri", "pool_table", "pool_rows", "test_spec", "work_dir"))
def probe_task(store_uri: str, pool_table: str, pool_rows: int, test_spec: str, base: ModelRef,
               settings: dict[str, Any], *, host: str, work_dir: str, trained: ModelRef | None = None) -> Rates:
    """Runs on a worker, so the probe sees a worker's threads and device (and warms that worker). Cached per
    model, settings slice and machine (``host``), not per pool: per-token rates do not depend on which pool."""
    test = load_records(test_spec).records if test_spec else []
    return probe(base.path, WinnowSettings.model_validate(settings), _sample(store_uri, pool_table, pool_rows), test,
                 work_dir=work_dir, train_model_path=trained.path if trained else "", import_s=IMPORT_S)


@task(name="noop")
def noop_task() -> None:
    """Nothing: timed round trip through the task runner, the orchestrator's overhead per task."""


@task(name="pool-lengths")
def lengths_task(store_uri: str, pool_table: str, pool_rows: int, base: ModelRef, model: ModelSettings) -> list[int]:
    """Encoded lengths (truncation included) of a seeded sample of the pool: what its token counts follow."""
    tok = load_tokenizer(base.path, trust_remote_code=model.trust_remote_code)
    return sample_lengths(tok, _sample(store_uri, pool_table, pool_rows), model.max_length, n=SAMPLE)
