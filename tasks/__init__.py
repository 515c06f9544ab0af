"""Prefect tasks: thin, retryable, cached units of work over the ``winnow`` library.

Each returns a small handle (table name, path, counts), never arrays, so persisted results stay small and
nothing big travels through Dask.
"""
from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy

from winnow.keys import code_version


@dataclass
class LibraryCode(CachePolicy):
    """The code version (``winnow.keys.code_version``) of the task's module and every ``winnow`` module it
    imports. Prefect's TASK_SOURCE hashes only the thin wrapper, so a fix in the library used to be hidden
    by a cached result of the bug; with this, it invalidates exactly the tasks whose computation uses it."""

    def compute_key(self, task_ctx: Any, inputs: Any, flow_parameters: Any, **kwargs: Any) -> str | None:
        return code_version(task_ctx.task.fn.__module__) if task_ctx else None


# A re-run with the same inputs, task code and library code reuses the finished result.
CACHED = INPUTS + TASK_SOURCE + LibraryCode()


def cached_by_content(*path_args: str) -> CachePolicy:
    """CACHED without the named path arguments, for tasks that also take a digest of each path's content:
    the same subset or test set under another path (another run folder) is the same artifact."""
    inputs = INPUTS
    for name in path_args:
        inputs = inputs - name
    return inputs + TASK_SOURCE + LibraryCode()


def unexpected_only(task, task_run, state) -> bool:
    """Retry condition of every task with retries: retry what may pass on a second try (a lost worker, a
    store conflict), never an expected error — bad data or a bad setting fails the same way again."""
    from winnow.errors import WinnowError

    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # an unreadable result is no reason to give up the retry
        return True
    return not isinstance(exc, WinnowError)
