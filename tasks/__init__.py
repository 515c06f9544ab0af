"""Prefect tasks: thin, retryable, cached units of work over the ``winnow`` library.

Each returns a small handle (table name, path, counts), never arrays, so persisted results stay small and
nothing big travels through Dask.
"""
from prefect.cache_policies import INPUTS, TASK_SOURCE

CACHED = INPUTS + TASK_SOURCE  # a re-run with the same inputs and task code reuses the finished result


def unexpected_only(task, task_run, state) -> bool:
    """Retry condition of every task with retries: retry what may pass on a second try (a lost worker, a
    store conflict), never an expected error — bad data or a bad setting fails the same way again."""
    from winnow.errors import WinnowError

    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # an unreadable result is no reason to give up the retry
        return True
    return not isinstance(exc, WinnowError)
