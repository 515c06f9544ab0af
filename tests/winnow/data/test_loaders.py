"""The data contract: every bad record is named (file, line, field) and counts always add up."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from winnow.data.loaders import load_records
from winnow.errors import DataFormatError

BAD = Path(__file__).parents[2] / "data" / "bad"

# case -> (line of the bad record, field named, words the reason must contain)
CASES = {
    "malformed_json.jsonl": (2, "<line>", "malformed JSON"),
    "truncated_last_line.jsonl": (3, "<line>", "truncated last line"),
    "missing_field.jsonl": (2, "response", "missing"),
    "mistyped_field.jsonl": (2, "response", "must be a string"),
    "unknown_role.jsonl": (2, "messages[0].role", "unknown role 'wizard'"),
    "empty_prompt.jsonl": (2, "prompt", "empty prompt"),
    "empty_response.jsonl": (2, "response", "empty response"),
    "invalid_utf8.jsonl": (2, "<line>", "invalid UTF-8"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_record_is_quarantined_with_file_line_field(name: str) -> None:
    line, field, words = CASES[name]
    res = load_records(BAD / name)
    assert res.n_in == len(res.records) + len(res.quarantined)
    assert len(res.records) == 2 and len(res.quarantined) == 1
    q = res.quarantined[0]
    assert (q.path, q.line, q.field) == (str(BAD / name), line, field)
    assert words in q.reason
    assert f"{BAD / name}:{line}: field '{field}'" in str(q)


def test_duplicate_ids_exact_and_conflicting() -> None:
    res = load_records(BAD / "duplicate_ids.jsonl")
    assert [r.id for r in res.records] == ["x1"]
    reasons = sorted(q.reason for q in res.quarantined)
    assert reasons == ["duplicate of line 1", "id 'x1' already used at line 1 with different content"]
    assert res.n_in == 3


def test_ten_megabyte_line_is_quarantined(tmp_path: Path) -> None:
    p = tmp_path / "huge.jsonl"
    ok = json.dumps({"prompt": "p", "response": "r", "source": "s", "task": "t"})
    p.write_text(ok + "\n" + json.dumps({"prompt": "x" * 10_000_000, "response": "y", "source": "s",
                                         "task": "t"}) + "\n")
    res = load_records(p)
    assert len(res.records) == 1 and res.quarantined[0].line == 2
    assert "over the 1,000,000 limit" in res.quarantined[0].reason


def test_file_with_no_usable_record_raises_naming_the_first_problem() -> None:
    with pytest.raises(DataFormatError, match=r"no_records.jsonl: no usable record \(2 read\).*:1: field 'prompt': must be a string"):
        load_records(BAD / "no_records.jsonl")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="nope.jsonl: file does not exist"):
        load_records(tmp_path / "nope.jsonl")
    with pytest.raises(DataFormatError, match="does not exist"):
        load_records(str(tmp_path / "nowhere"))


def test_ids_default_to_content_hash_and_are_stable(data_dir: Path) -> None:
    a = load_records(data_dir / "good" / "pool.jsonl")
    b = load_records(data_dir / "good" / "pool.jsonl")
    assert [r.id for r in a.records] == [r.id for r in b.records]
    assert len({r.id for r in a.records}) == len(a.records) == 20
    assert a.records[-1].id == "g7"  # an explicit id is kept


def test_parquet_and_datasets_dir_load_like_jsonl(data_dir: Path, tmp_path: Path) -> None:
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(l) for l in (data_dir / "good" / "pool.jsonl").read_text().splitlines()]
    flat = [{k: r[k] for k in ("prompt", "response", "source", "task")} for r in rows if "prompt" in r]
    pq.write_table(pa.Table.from_pylist(flat), tmp_path / "pool.parquet")
    datasets.Dataset.from_list(flat).save_to_disk(str(tmp_path / "ds"))
    jsonl = tmp_path / "pool.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in flat))
    ids = [r.id for r in load_records(jsonl).records]
    assert [r.id for r in load_records(tmp_path / "pool.parquet").records] == ids
    assert [r.id for r in load_records(str(tmp_path / "ds")).records] == ids
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "p", "response": None, "source": "s", "task": "t"}] + flat), bad)
    res = load_records(bad)
    assert (res.quarantined[0].line, res.quarantined[0].field) == (1, "response")


def test_prompts_only_load_where_allowed_and_are_quarantined_elsewhere(tmp_path: Path) -> None:
    """A label-free target's queries may lack responses (``labelled=False``); every other reader keeps the
    contract, so nothing trains on or scores against a label that is not there."""
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"prompt": "is 7 odd?", "source": "s", "task": "t"}) + "\n"
                    + json.dumps({"messages": [{"role": "user", "content": "is 8 odd?"}], "source": "s", "task": "t"})
                    + "\n" + json.dumps({"prompt": "is 9 odd?", "response": "yes", "source": "s", "task": "t"}) + "\n")
    loose = load_records(path, labelled=False)
    assert [r.labelled for r in loose.records] == [False, False, True] and not loose.quarantined
    assert loose.records[0].messages == (("user", "is 7 odd?"), ("assistant", ""))
    strict = load_records(path)
    assert len(strict.records) == 1 and [(q.line, q.field) for q in strict.quarantined] == [(1, "response"), (2, "messages")]
