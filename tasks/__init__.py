"""Prefect tasks: thin, retryable, cached units of work over the ``winnow`` library.

Each returns a small handle (table name, path, counts), never arrays, so persisted results stay small and
nothing big travels through Dask.
"""
from prefect.cache_policies import INPUTS, TASK_SOURCE

CACHED = INPUTS + TASK_SOURCE  # a re-run with the same inputs and task code reuses the finished result
