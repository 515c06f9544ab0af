"""Prefect tasks: thin, retryable, cached units of work over the ``winnow`` library, one step each.

Each returns a small typed handle (``winnow.results``: table names, paths, counts), never arrays, so persisted
results stay small and nothing big travels through Dask. ``step_task`` binds a task to its step of
``winnow.steps``: its name, its retries and its cache, whose key is that step's artifact key over the task's
inputs, so Prefect's cache and the library's folders and tables are keyed by one function.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.cache_policies import CachePolicy

from winnow.steps import STEPS


@dataclass
class StepCache(CachePolicy):
    """Prefect's cache key of a step's task: ``Step.key`` over the task's inputs (models count by their
    fingerprint: tasks take ``ModelRef``s, never bare model paths), with the code version of the step's modules
    and of the task's own module. ``where`` names path inputs whose content another input already stands for
    (a subset file beside its digest): the same content under another path is the same artifact."""

    step: str = ""
    where: tuple[str, ...] = ()

    def compute_key(self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: Any, **kwargs: Any) -> str | None:
        if task_ctx is None:
            return None
        kept = {k: v for k, v in inputs.items() if k not in self.where}
        return STEPS[self.step].key(inputs=kept, code=(task_ctx.task.fn.__module__,))


def unexpected_only(task, task_run, state) -> bool:
    """Retry condition of every task with retries: retry what may pass on a second try (a lost worker, a
    store conflict), never an expected error: bad data or a bad setting fails the same way again."""
    from winnow.errors import WinnowError

    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # an unreadable result is no reason to give up the retry
        return True
    return not isinstance(exc, WinnowError)


def step_task(step: str, *, name: str = "", cached: bool = True, where: tuple[str, ...] = (), retries: int = 1,
              **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """A Prefect task for ``step``: cached on its artifact key (``cached=False`` for steps whose result lives
    in the store with its own markers, or depends on state outside its inputs), retried on unexpected errors."""
    if step not in STEPS:
        raise KeyError(f"no step {step!r} in winnow.steps")

    def wrap(fn: Callable[..., Any]) -> Any:
        opts: dict[str, Any] = {"name": name or step.replace("_", "-"), "retries": retries, **options}
        if retries:
            opts["retry_condition_fn"] = unexpected_only
        if cached:
            opts.update(cache_policy=StepCache(step=step, where=tuple(where)), persist_result=True)
        return task(**opts)(fn)

    return wrap
