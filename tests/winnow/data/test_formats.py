"""Data as users have it: every supported layout, container, compression and encoding loads the same records."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import zstandard

from winnow.data.layouts import parse_map
from winnow.data.loaders import canonical_copy, load_records, read_records
from winnow.errors import DataFormatError

PAIRS = [{"prompt": f"What is {i}+1?", "response": str(i + 1)} for i in range(4)]
# The same four examples in each layout people have (name -> one record).
LAYOUT_OF = {
    "messages": lambda p: {"messages": [{"role": "user", "content": p["prompt"]},
                                        {"role": "assistant", "content": p["response"]}]},
    "content_parts": lambda p: {"messages": [{"role": "user", "content": [{"type": "text", "text": p["prompt"]}]},
                                             {"role": "assistant", "content": [{"type": "text", "text": p["response"]}]}]},
    "prompt_response": lambda p: dict(p),
    "prompt_completion": lambda p: {"prompt": p["prompt"], "completion": p["response"]},
    "alpaca": lambda p: {"instruction": p["prompt"], "input": "", "output": p["response"]},
    "sharegpt": lambda p: {"conversations": [{"from": "human", "value": p["prompt"]},
                                             {"from": "gpt", "value": p["response"]}]},
    "qa": lambda p: {"question": p["prompt"], "answer": p["response"]},
    # TRL's conversational prompt/completion: both sides are lists of messages
    "trl_conversational": lambda p: {"prompt": [{"role": "user", "content": p["prompt"]}],
                                     "completion": [{"role": "assistant", "content": p["response"]}]},
}
DETECTED = {"content_parts": "messages", "prompt_completion": "prompt_response", "trl_conversational": "prompt_response"}


def _chats(res) -> list[tuple]:
    return [r.messages for r in res.records]


@pytest.fixture(scope="module")
def expected() -> list[tuple]:
    return [(("user", p["prompt"]), ("assistant", p["response"])) for p in PAIRS]


@pytest.mark.parametrize("layout", sorted(LAYOUT_OF))
def test_each_layout_is_detected_and_loads_the_same_chats(layout: str, tmp_path: Path, expected) -> None:
    path = tmp_path / "mydata.jsonl"
    path.write_text("".join(json.dumps(LAYOUT_OF[layout](p)) + "\n" for p in PAIRS))
    res = load_records(path)
    assert _chats(res) == expected
    assert res.layouts == {DETECTED.get(layout, layout): 4}
    # no source or task in the file: the file's stem, then the source, each counted
    assert {r.source for r in res.records} == {"mydata"} and {r.task for r in res.records} == {"mydata"}
    assert res.defaulted == {"source": 4, "task": 4}


def _write(path: Path, data: bytes, compression: str) -> None:
    if compression == "gzip":
        data = gzip.compress(data)
    elif compression == "zstd":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)


@pytest.mark.parametrize("compression,suffix", [("none", ""), ("gzip", ".gz"), ("zstd", ".zst")])
@pytest.mark.parametrize("container", ["jsonl", "array", "document"])
def test_containers_and_compressions(container: str, compression: str, suffix: str, tmp_path: Path, expected) -> None:
    rows = [LAYOUT_OF["alpaca"](p) for p in PAIRS]
    text = {"jsonl": "".join(json.dumps(r) + "\n" for r in rows), "array": json.dumps(rows, indent=2),
            "document": json.dumps({"version": 1, "data": rows}, indent=2)}[container]
    path = tmp_path / f"data.{'jsonl' if container == 'jsonl' else 'json'}{suffix}"
    _write(path, text.encode(), compression)
    res = load_records(path)
    assert _chats(res) == expected
    assert res.read_as == {"compression": compression, "encoding": "utf-8", "container": container}


def test_compression_is_read_by_magic_bytes_not_by_name(tmp_path: Path, expected) -> None:
    path = tmp_path / "really_gzip.jsonl"
    path.write_bytes(gzip.compress("".join(json.dumps(p) + "\n" for p in PAIRS).encode()))
    assert _chats(load_records(path)) == expected


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_bom_and_crlf_never_cost_a_record(encoding: str, tmp_path: Path, expected) -> None:
    path = tmp_path / "windows.jsonl"
    path.write_bytes("".join(json.dumps(p, ensure_ascii=False) + "\r\n" for p in PAIRS).encode(encoding))
    res = load_records(path)
    assert _chats(res) == expected and not res.quarantined


def test_a_broken_array_element_costs_only_itself(tmp_path: Path) -> None:
    good = [json.dumps(p) for p in PAIRS]
    path = tmp_path / "arr.json"
    path.write_text("[\n" + ",\n".join([good[0], '{"prompt": "x", "response": }', good[1], good[2]]) + "\n]\n")
    res = read_records(path)
    assert len(res.records) == 3 and res.n_in == 4
    assert (res.quarantined[0].line, res.quarantined[0].field) == (3, "<element>")
    cut = tmp_path / "cut.json"
    cut.write_text("[\n" + ",\n".join(good) + "\n]\n")
    cut.write_text(cut.read_text()[:-20])  # the file ends inside the last element
    res = read_records(cut)
    assert len(res.records) == 3 and "truncated last element" in res.quarantined[0].reason


def test_cut_gzip_keeps_the_records_before_the_cut(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    blob = gzip.compress("".join(json.dumps({**p, "id": str(i) * 200}) + "\n" for i, p in enumerate(PAIRS * 50)).encode())
    path.write_bytes(blob[: len(blob) * 3 // 4])
    res = read_records(path)
    assert res.records and res.n_in == len(res.records) + len(res.quarantined)
    assert any(q.field == "<file>" and "gzip stream cut short" in q.reason for q in res.quarantined)


def test_column_map_and_forced_format(tmp_path: Path, expected) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text("".join(json.dumps({"q": p["prompt"], "a": p["response"], "source": "mine"}) + "\n" for p in PAIRS))
    with pytest.raises(DataFormatError, match="no known layout.*its keys: 'q', 'a', 'source'"):
        load_records(path)
    res = load_records(path, column_map=parse_map("prompt=q,response=a"))
    assert _chats(res) == expected and res.defaulted == {"source": 0, "task": 4}
    # forcing a layout the records are not in names the field it missed
    res = read_records(path, layout="alpaca", column_map=parse_map("prompt=q,response=a"))
    assert not res.records and {(q.field, q.reason) for q in res.quarantined} == {("instruction", "missing")}
    with pytest.raises(ValueError, match="unknown field 'promt'"):
        parse_map("promt=q")


def test_canonical_copy_is_what_every_later_reader_sees(tmp_path: Path, expected) -> None:
    """A test set in columns of its own (data.target.map) is read once and handed on as a canonical file that
    auto-detects to the same records, named by its content so a changed map is a changed key."""
    path = tmp_path / "bench.jsonl.gz"
    rows = [{"q": p["prompt"], "a": p["response"], "choices": ["x", p["response"]]} for p in PAIRS]
    path.write_bytes(gzip.compress(("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n").encode()))
    copy, res = canonical_copy(path, tmp_path / "targets", column_map=parse_map("prompt=q,response=a"))
    assert (res.n_in, len(res.records), len(res.quarantined)) == (5, 4, 1) and res.path == str(path)
    again = load_records(copy)  # no map: the copy is in the contract's own layout
    assert _chats(again) == expected and [r.id for r in again.records] == [r.id for r in res.records]
    assert [r.choices for r in again.records] == [r.choices for r in res.records]
    assert {r.source for r in again.records} == {"bench"}  # the user's file stem, not the copy's
    assert canonical_copy(path, tmp_path / "targets", column_map=parse_map("prompt=q,response=a"))[0] == copy
    prompts_only, _ = canonical_copy(path, tmp_path / "targets", column_map=parse_map("prompt=q"), labelled=False)
    assert prompts_only != copy and not any(r.labelled for r in load_records(prompts_only, labelled=False).records)


def test_non_text_content_part_is_quarantined_naming_the_part(tmp_path: Path) -> None:
    path = tmp_path / "parts.jsonl"
    image = {"messages": [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                                       {"type": "image_url", "image_url": {"url": "x"}}]},
                          {"role": "assistant", "content": "a cat"}]}
    path.write_text(json.dumps(image) + "\n" + json.dumps(PAIRS[0]) + "\n")
    res = read_records(path)
    assert len(res.records) == 1
    assert (res.quarantined[0].field, res.quarantined[0].line) == ("messages[0].content[1]", 1)
    assert "'image_url'" in res.quarantined[0].reason


def test_trl_text_records_train_on_their_whole_text(tmp_path: Path) -> None:
    """TRL's language-modelling layout: the text is the response to an empty prompt, so all of it is trained on."""
    path = tmp_path / "lm.jsonl"
    path.write_text(json.dumps({"text": "The quick brown fox."}) + "\n" + json.dumps({"text": ""}) + "\n")
    res = load_records(path)
    assert _chats(res) == [(("user", ""), ("assistant", "The quick brown fox."))] and res.layouts == {"text": 1}
    assert [(q.line, q.field) for q in res.quarantined] == [(2, "messages[1].content")]


@pytest.mark.parametrize("delimiter,suffix", [(",", ".csv"), ("\t", ".tsv")])
def test_csv_and_tsv_with_a_header_load_and_a_bad_row_costs_only_itself(delimiter: str, suffix: str,
                                                                          tmp_path: Path, expected) -> None:
    import csv

    path = tmp_path / f"pairs{suffix}"
    with path.open("w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(["question", "answer"])
        for p in PAIRS[:2]:
            w.writerow([p["prompt"], p["response"]])
        w.writerow(["a prompt with no answer", ""])  # line 4: its response is missing
        w.writerow(["one", "two", "three"])  # line 5: more cells than columns
        for p in PAIRS[2:]:
            w.writerow([p["prompt"], p["response"]])
    res = load_records(path)
    assert _chats(res) == expected and res.read_as["container"] == suffix[1:]
    assert [(q.line, q.field) for q in res.quarantined] == [(4, "response"), (5, "<row>")]


def test_a_missing_csv_says_it_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="does not exist"):
        load_records(tmp_path / "absent.csv")
