"""Read pool, query and test sets from JSONL, Parquet or Hugging Face ``datasets``.

Every reader yields ``(line_or_row, object)`` pairs and shares one validation path, so a bad record gets the
same file:line:field message whatever the format. File-level problems (missing file, no usable record)
raise ``DataFormatError``; record-level problems become quarantine entries.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from winnow.data.records import LoadResult, Quarantined, RecordError, dedupe, parse_record
from winnow.errors import DataFormatError, MissingDependencyError

MAX_LINE_BYTES = 1_000_000  # a 10 MB "record" is almost surely a concatenation bug, not an example


def _jsonl_objects(path: Path, result: LoadResult, max_line_bytes: int) -> Iterator[tuple[int, Any]]:
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    last = len(lines)
    if lines and lines[-1] == b"":
        lines.pop()  # the usual trailing newline
        last = -1
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        result.n_in += 1
        if len(raw) > max_line_bytes:
            result.quarantined.append(Quarantined(str(path), i, "<line>",
                                                  f"line is {len(raw):,} bytes, over the {max_line_bytes:,} limit"))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            result.quarantined.append(Quarantined(str(path), i, "<line>", f"invalid UTF-8 at byte {e.start}"))
            continue
        try:
            yield i, json.loads(text)
        except json.JSONDecodeError as e:
            truncated = i == last and not data.endswith(b"\n")
            why = "truncated last line" if truncated else "malformed JSON"
            result.quarantined.append(Quarantined(str(path), i, "<line>", f"{why}: {e.msg} at column {e.colno}"))


def _parquet_objects(path: Path, result: LoadResult) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataFormatError(str(path), f"cannot read Parquet: {e}") from None
    for i, row in enumerate(rows, start=1):
        result.n_in += 1
        yield i, row


def _hf_objects(spec: str, result: LoadResult) -> Iterator[tuple[int, Any]]:
    """A ``datasets`` directory (``DIR`` or ``DIR:split``) or a hub name (``name`` or ``name:split``)."""
    try:
        import datasets
    except ImportError:
        raise MissingDependencyError("reading Hugging Face datasets needs: pip install datasets") from None
    where, _, split = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if os.path.isdir(where):
        try:
            ds = datasets.load_from_disk(where)
        except (FileNotFoundError, ValueError) as e:
            raise DataFormatError(where, f"a directory that is not a saved `datasets` dataset ({e})") from None
        if isinstance(ds, datasets.DatasetDict):
            split = split or "train"
            if split not in ds:
                raise DataFormatError(where, f"no split {split!r}; splits are {list(ds)} (use DIR:split)")
            ds = ds[split]
    elif os.path.exists(where) or where.startswith((".", "/")):
        raise DataFormatError(spec, "does not exist, or is not a .jsonl/.json/.parquet file or a datasets directory")
    else:
        try:
            ds = datasets.load_dataset(where, split=split or "train")
        except Exception as e:  # hub errors come in many types (offline, not found, gated, bad split)
            raise DataFormatError(spec, f"not a file, and no hub dataset could be loaded: {type(e).__name__}: "
                                        f"{str(e).splitlines()[0] if str(e) else ''} (offline runs: WINNOW_OFFLINE=1)") from None
    for i, row in enumerate(ds, start=1):
        result.n_in += 1
        yield i, row


def load_records(spec: str | os.PathLike[str], *, default_source: str = "", default_task: str = "",
                 max_line_bytes: int = MAX_LINE_BYTES, labelled: bool = True) -> LoadResult:
    """Load and validate one data set (``labelled=False``: prompts without responses are accepted too).

    ``spec`` is a ``.jsonl``/``.json`` file, a ``.parquet`` file, a directory saved by ``datasets``
    (optionally ``DIR:split``), or a hub dataset name (``name`` or ``name:split``) for users with internet.
    """
    spec = str(spec)
    result = LoadResult(path=spec)
    path = Path(spec)
    if path.suffix in (".jsonl", ".json"):
        if not path.is_file():
            raise DataFormatError(spec, "file does not exist")
        objects = _jsonl_objects(path, result, max_line_bytes)
    elif path.suffix == ".parquet":
        if not path.is_file():
            raise DataFormatError(spec, "file does not exist")
        objects = _parquet_objects(path, result)
    else:
        objects = _hf_objects(spec, result)
    for line, obj in objects:
        try:
            rec = parse_record(obj, default_source=default_source, default_task=default_task, labelled=labelled)
        except RecordError as e:
            result.quarantined.append(Quarantined(spec, line, e.field, e.reason))
            continue
        result.records.append(rec)
        result.lines.append(line)
    dedupe(result)
    result.check_counts()
    if not result.records:
        detail = f"; first problem: {result.quarantined[0]}" if result.quarantined else ""
        raise DataFormatError(spec, f"no usable record ({result.n_in} read){detail}")
    return result


def write_jsonl(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    """Write rows atomically (temp file + rename), so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
