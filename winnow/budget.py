"""Budgets: how many examples to take, as a count or as a share of the pool — one parser for every entry point.

A budget used to be one float read as "a share when <= 1, else a count", so ``--budget 1`` silently meant
the whole pool. Now the *type* says which it is, and the text form is unambiguous:

- a whole number (``200``, ``1``) is a count of examples;
- a percentage (``5%``, ``100%``) or a decimal fraction (``0.05``, ``1.0``) is a share of the pool in (0, 1].

Internally a count is an ``int`` and a share a ``float``; YAML, JSON and Prefect parameters keep that
distinction (``budget: 1`` vs ``budget: 1.0``). Zero, negatives, shares above 1 and fractional counts
(``2.5``) are errors naming the flag or setting they came from.
"""
from __future__ import annotations

import math
import re
from typing import Annotated, Any, Union

from pydantic import BeforeValidator

from winnow.errors import ConfigError

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_budget(value: Any, *, name: str = "budget") -> int | float:
    """A count (``int`` >= 1) or a share (``float`` in (0, 1]) from a string, int or float.

    ``name`` is the flag or setting the value came from; it starts every error message."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{name}: expected a count (200) or a share (5%, 0.05), got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        percent = text.endswith("%")
        body = text[:-1].strip() if percent else text
        if not _NUMBER.match(body):
            raise ConfigError(f"{name}: {value!r} is not a budget; write a count (200) or a share (5%, 0.05)")
        if percent:
            return _share(float(body) / 100, name, shown=text)
        is_count = re.fullmatch(r"[+-]?\d+", body) is not None
        value = int(body) if is_count else float(body)
    if isinstance(value, int):
        if value <= 0:
            raise ConfigError(f"{name}: must be at least 1 example, got {value}")
        return value
    return _share(value, name, shown=repr(value))


def _share(x: float, name: str, shown: str) -> float:
    if not math.isfinite(x) or x <= 0:
        raise ConfigError(f"{name}: must be positive, got {shown}")
    if x > 1:
        hint = f"; for {int(x)} examples write {int(x)}" if x == int(x) else ""
        raise ConfigError(f"{name}: a share must be at most 100% (1.0), got {shown}{hint}")
    return float(x)


def resolve_budget(budget: int | float, n_pool: int, *, name: str = "selection.budget") -> int:
    """The number of examples a budget means for a pool of ``n_pool``: a share is rounded up (at least 1),
    a count is taken as is; more than the pool is an error naming ``name``."""
    b = parse_budget(budget, name=name)
    k = b if isinstance(b, int) else max(1, math.ceil(b * n_pool - 1e-9))
    if k > n_pool:
        raise ConfigError(f"{name}: {k} examples asked, the pool has only {n_pool}")
    return k


def describe_budget(budget: int | float) -> str:
    """``"28 examples"`` or ``"10% of the pool"``: how a budget reads in logs and reports."""
    return f"{budget} examples" if isinstance(budget, int) else f"{budget * 100:g}% of the pool"


def _validate(value: Any) -> int | float:
    try:
        return parse_budget(value, name="budget")
    except ConfigError as e:  # pydantic adds the setting's own dotted name in front of the message
        raise ValueError(e.problems[0].removeprefix("budget: ")) from None


# The settings field type: pydantic keeps int and float apart (smart union), the validator parses strings.
Budget = Annotated[Union[int, float], BeforeValidator(_validate)]
