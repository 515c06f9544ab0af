"""Budgets: the type says count or share; ``1`` is one example, ``1.0`` the whole pool (issue #13)."""
from __future__ import annotations

import pytest

from winnow.budget import describe_budget, parse_budget, resolve_budget
from winnow.errors import ConfigError
from winnow.settings import build_settings


@pytest.mark.parametrize("text, value", [("200", 200), ("1", 1), (" 7 ", 7), ("5%", 0.05), ("100%", 1.0),
                                         ("0.05", 0.05), ("1.0", 1.0), ("12.5 %", 0.125), (3, 3), (0.3, 0.3)])
def test_parse(text, value) -> None:
    got = parse_budget(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text, message", [
    ("0", "must be at least 1 example, got 0"), ("-2", "must be at least 1 example"),
    ("0%", "must be positive"), ("-0.1", "must be positive"), ("2.5", "a share must be at most 100%"),
    ("250.0", "for 250 examples write 250"), ("150%", "at most 100%"), ("five", "'five' is not a budget"),
    ("", "is not a budget"), ("nan", "is not a budget"), (True, "expected a count"), (None, "expected a count"),
])
def test_parse_errors_name_the_flag(text, message) -> None:
    with pytest.raises(ConfigError, match="^--budget: ") as e:
        parse_budget(text, name="--budget")
    assert message in str(e.value)


def test_resolve() -> None:
    assert resolve_budget(1, 280) == 1  # one example, never "the whole pool"
    assert resolve_budget(1.0, 280) == 280 and resolve_budget("100%", 280) == 280
    assert resolve_budget(0.1, 280) == 28  # 0.1 * 280 is 28.000000000000004 in floating point, still 28
    assert resolve_budget(0.05, 270) == 14 and resolve_budget(1e-9, 10) == 1 and resolve_budget("5%", 20) == 1
    with pytest.raises(ConfigError, match="^mixture.budget: 11 examples asked, the pool has only 10$"):
        resolve_budget(11, 10, name="mixture.budget")


def test_settings_keep_count_and_share_apart() -> None:
    s = build_settings({}, ["selection.budget=1", "mixture.budget=5%"])
    assert s.selection.budget == 1 and isinstance(s.selection.budget, int) and s.mixture.budget == 0.05
    assert build_settings({"selection": {"budget": 1.0}}).selection.budget == 1.0
    roundtrip = build_settings(s.model_dump(mode="json"))
    assert isinstance(roundtrip.selection.budget, int) and isinstance(roundtrip.mixture.budget, float)
    with pytest.raises(ConfigError, match=r"selection.budget: must be at least 1 example, got 0"):
        build_settings({}, ["selection.budget=0"])
    assert describe_budget(28) == "28 examples" and describe_budget(0.05) == "5% of the pool"
