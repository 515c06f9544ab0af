"""No record can sink its file: random bytes, random JSON and mutated valid records never raise out of the
per-record path, and every record read is used or quarantined (``in = used + quarantined``).

``WINNOW_FUZZ_EXAMPLES`` raises the number of generated cases per property (CI runs the default)."""
from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winnow.data.loaders import load_records, read_records
from winnow.errors import DataFormatError

EXAMPLES = int(os.environ.get("WINNOW_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                database=None)
SUFFIXES = [".jsonl", ".json", ".jsonl.gz", ".ndjson"]

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
    st.sampled_from(["prompt", "response", "messages", "role", "content", "source", "task", "id", "choices",
                     "answer", "instruction", "input", "output", "conversations", "from", "value", "question",
                     "type", "text", "tests", "system", "completion"]) | st.text(max_size=5), kids, max_size=5),
    max_leaves=20)
VALID = [
    {"prompt": "p", "response": "r", "source": "s", "task": "t", "id": "a"},
    {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                  {"role": "assistant", "content": [{"type": "text", "text": "hello"}]}]},
    {"instruction": "add", "input": "1 2", "output": "3"},
    {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "id": 7},
    {"question": "2+2?", "choices": ["3", "4"], "answer": 1},
]
ESCAPES = ["\\ud800", "\\udfff", "\\u0000", "\\\\", "\\\"", "\\x41", "\\q", "\\uZZZZ", "\u2028", "\ufeff"]


def _check(path: Path) -> None:
    res = read_records(path)
    assert res.n_in == len(res.records) + len(res.quarantined)
    for q in res.quarantined:
        assert len(str(q)) < 2_000  # a message names the problem, it never echoes a megabyte of input
    for r in res.records:  # what is used can be stored and hashed
        json.dumps(r.to_json(), ensure_ascii=False).encode("utf-8")
    try:
        load_records(path)
    except DataFormatError:
        assert not res.records  # the only file-level error left: nothing usable


def _file(content: bytes, suffix: str) -> None:
    """Write ``content`` as a file of that suffix (gzipped for .gz) and check it."""
    with tempfile.TemporaryDirectory(prefix="winnow-fuzz-") as d:
        path = Path(d) / f"f{suffix}"
        path.write_bytes(gzip.compress(content) if suffix.endswith(".gz") else content)
        _check(path)


@FUZZ
@given(st.sampled_from([b"", b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\xff\xfe", b"\xef\xbb\xbf", b"["]),
       st.binary(max_size=400), st.sampled_from(SUFFIXES))
def test_random_bytes(head: bytes, content: bytes, suffix: str) -> None:
    """Random bytes, some behind the magic numbers and marks the readers branch on."""
    _file(head + content, suffix)


@FUZZ
@given(st.lists(json_values, max_size=6), st.sampled_from(["jsonl", "array"]), st.sampled_from(SUFFIXES))
def test_random_json(values: list, container: str, suffix: str) -> None:
    text = ("".join(json.dumps(v) + "\n" for v in values) if container == "jsonl" else json.dumps(values))
    _file(text.encode(), suffix)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid record, serialised, then broken the ways files break: a key dropped or retyped, an escape
    spliced in, a cut, deep nesting, a huge string, a byte-order mark, CRLF."""
    rec = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    op = draw(st.sampled_from(["drop", "retype", "escape", "cut", "nest", "huge", "bom", "crlf", "none"]))
    if op == "drop" and rec:
        rec.pop(draw(st.sampled_from(sorted(rec))))
    if op == "retype" and rec:
        rec[draw(st.sampled_from(sorted(rec)))] = draw(json_values)
    line = json.dumps(rec)
    if op == "escape":
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.sampled_from(ESCAPES)) + line[at:]
    if op == "cut":
        line = line[: draw(st.integers(0, len(line)))]
    if op == "nest":
        depth = draw(st.sampled_from([50, 2_000, 200_000]))
        line = line.replace('"p"', "[" * depth + '"p"' + "]" * depth, 1).replace('"hi"', "{\"a\":" * depth + "1" + "}" * depth, 1)
    if op == "huge":
        line = line.replace('"r"', json.dumps("r" * draw(st.sampled_from([10_000, 2_000_000]))), 1)
    if op == "bom":
        line = "\ufeff" + line
    if op == "crlf":
        line += "\r"
    return line


@FUZZ
@given(st.lists(mutated(), min_size=1, max_size=5), st.sampled_from(["jsonl", "array"]), st.sampled_from(SUFFIXES))
def test_mutated_valid_records(lines: list[str], container: str, suffix: str) -> None:
    text = "\n".join(lines) + "\n" if container == "jsonl" else "[" + ",\n".join(lines) + "]"
    _file(text.encode("utf-8", "surrogatepass"), suffix)
