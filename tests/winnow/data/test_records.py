"""The record contract: multiple-choice fields."""
from __future__ import annotations

import pytest

from winnow.data.records import RecordError, parse_record


def test_multiple_choice_records_take_the_answer_as_index_letter_or_text() -> None:
    base = {"prompt": "2 + 2?", "choices": ["3", "4", "5"], "source": "s", "task": "t"}
    for answer in (1, "B", "(b)", "4"):
        r = parse_record({**base, "answer": answer})
        assert (r.response, r.choices) == ("4", ("3", "4", "5"))
    assert parse_record(parse_record({**base, "answer": 1}).to_json()).choices == ("3", "4", "5")  # round trip
    for bad, field in (({**base, "answer": 7}, "answer"), ({**base, "choices": ["x"], "answer": 0}, "choices"),
                       ({**base, "response": "6"}, "choices"), ({**base, "choices": ["a", "a"], "answer": 0}, "choices")):
        with pytest.raises(RecordError) as e:
            parse_record(bad)
        assert e.value.field == field
