"""Held-out splits by id: stable, disjoint, and the same when the file grows."""
from __future__ import annotations

from winnow.data.records import parse_record
from winnow.data.splits import split_by_id


def _recs(n: int):
    return [parse_record({"id": f"r{i}", "prompt": f"q{i}", "response": "a", "source": "s", "task": "t"})
            for i in range(n)]


def test_split_is_disjoint_complete_and_stable_under_growth() -> None:
    val, test = split_by_id(_recs(200), 0.5, seed=0)
    assert {r.id for r in val}.isdisjoint({r.id for r in test}) and len(val) + len(test) == 200
    assert 70 < len(val) < 130
    val2, test2 = split_by_id(_recs(300), 0.5, seed=0)  # the file grew: old records keep their side
    assert {r.id for r in val} <= {r.id for r in val2} and {r.id for r in test} <= {r.id for r in test2}
    assert split_by_id(_recs(200), 0.5, seed=1)[0] != val


def test_a_tiny_file_has_both_sides() -> None:
    for n in (2, 3):
        val, test = split_by_id(_recs(n), 0.5, seed=0)
        assert val and test and len(val) + len(test) == n
