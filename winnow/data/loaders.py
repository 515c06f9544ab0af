"""Read pool, query and test sets: JSONL or JSON (arrays too), gzip/zstd, Parquet, ``datasets`` dirs, hub names.

The one loader every entry point uses (ingest, curate, compare, mixture, experiment, NICE's queries). Readers
(``winnow.data.readers``) turn bytes into decoded objects, layouts (``winnow.data.layouts``) turn each object
into the contract's shape, and ``parse_record`` checks it, so a bad record gets the same file:line:field
message whatever the format and never costs the rest of its file. File-level problems (missing file, no
usable record) raise ``DataFormatError``; record-level problems become quarantine entries.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from winnow.data import readers
from winnow.data.layouts import LAYOUTS, normalise
from winnow.data.records import LoadResult, Quarantined, RecordError, dedupe, parse_record
from winnow.errors import DataFormatError, MissingDependencyError

MAX_LINE_BYTES = 1_000_000  # a 10 MB "record" is almost surely a concatenation bug, not an example
FORMATS = ("auto", *LAYOUTS)


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
        raise DataFormatError(spec, "does not exist" if not os.path.exists(where) else
                              "is not a .jsonl/.json/.csv/.tsv/.parquet file (optionally .gz/.zst) or a datasets "
                              "directory")
    else:
        try:
            ds = datasets.load_dataset(where, split=split or "train")
        except Exception as e:  # hub errors come in many types (offline, not found, gated, bad split)
            raise DataFormatError(spec, f"not a file, and no hub dataset could be loaded: {type(e).__name__}: "
                                        f"{str(e).splitlines()[0] if str(e) else ''} (offline runs: WINNOW_OFFLINE=1)") from None
    for i, row in enumerate(ds, start=1):
        result.n_in += 1
        yield i, row


def _objects(spec: str, result: LoadResult, max_line_bytes: int) -> Iterator[tuple[int, Any]]:
    """Decoded objects of any supported source; records how it was read in ``result.read_as``."""
    path = Path(spec)
    suffix = readers.data_suffix(path)
    if (suffix in (*readers.JSON_SUFFIXES, *readers.TABLE_SUFFIXES, ".parquet")
            or (path.is_file() and path.suffix in readers.COMPRESSED_SUFFIXES)):
        if not path.is_file():
            raise DataFormatError(spec, "file does not exist")
        if suffix == ".parquet":
            result.read_as = {"container": "parquet"}
            return readers.parquet_objects(path, result)
        data, compression = readers.read_bytes(path, result)
        data, encoding = readers.to_utf8(path, data, result)
        if suffix in readers.TABLE_SUFFIXES:
            result.read_as = {"compression": compression, "encoding": encoding, "container": suffix[1:]}
            return readers.delimited_objects(path, data, result)
        kind, doc = readers.container(data)
        result.read_as = {"compression": compression, "encoding": encoding, "container": kind}
        if kind == "array":
            return readers.array_objects(path, data, result, max_line_bytes)
        if kind == "document":
            return readers.document_objects(doc, result)
        return readers.jsonl_objects(path, data, result, max_line_bytes)
    result.read_as = {"container": "datasets"}
    return _hf_objects(spec, result)


def read_records(spec: str | os.PathLike[str], *, layout: str = "auto", column_map: Mapping[str, str] | None = None,
                 default_source: str = "", max_line_bytes: int = MAX_LINE_BYTES, labelled: bool = True) -> LoadResult:
    """Every record of ``spec`` used or quarantined; raises only for the file itself (missing, unreadable).

    ``layout`` forces one of ``LAYOUTS`` (``auto`` detects each record's); ``column_map`` renames the user's
    columns first ({winnow field: column}); a record without ``source`` takes ``default_source`` (the file's
    stem by default) and one without ``task`` its source, counted in ``result.defaulted``."""
    spec = str(spec)
    if layout not in FORMATS:
        raise DataFormatError(spec, f"unknown format {layout!r} (one of {', '.join(FORMATS)})")
    result = LoadResult(path=spec)
    fallback = default_source or readers.stem(spec)
    for line, obj in _objects(spec, result, max_line_bytes):
        try:
            canonical, found = normalise(obj, layout, column_map)
            rec = parse_record(canonical, default_source=fallback, labelled=labelled)
        except RecordError as e:
            result.quarantined.append(Quarantined(spec, line, e.field, e.reason))
            continue
        result.layouts[found] = result.layouts.get(found, 0) + 1
        for key in ("source", "task"):
            result.defaulted[key] += canonical.get(key) is None
        result.records.append(rec)
        result.lines.append(line)
    dedupe(result)
    result.check_counts()
    return result


def load_records(spec: str | os.PathLike[str], *, layout: str = "auto", column_map: Mapping[str, str] | None = None,
                 default_source: str = "", max_line_bytes: int = MAX_LINE_BYTES, labelled: bool = True) -> LoadResult:
    """``read_records``, and a ``DataFormatError`` naming the first problem when no record is usable.

    ``spec`` is a ``.jsonl``/``.json``/``.ndjson`` file (JSON lines, an array, or one document holding a
    ``data``/``records`` list), optionally gzip- or zstd-compressed, a ``.parquet`` file, a directory saved by
    ``datasets`` (optionally ``DIR:split``), or a hub dataset name (``name`` or ``name:split``); ``labelled=False``
    accepts prompts without responses too."""
    result = read_records(spec, layout=layout, column_map=column_map, default_source=default_source,
                          max_line_bytes=max_line_bytes, labelled=labelled)
    if not result.records:
        detail = f"; first problem: {result.quarantined[0]}" if result.quarantined else ""
        raise DataFormatError(str(spec), f"no usable record ({result.n_in} read){detail}")
    return result


def canonical_copy(spec: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, layout: str = "auto",
                   column_map: Mapping[str, str] | None = None, labelled: bool = True) -> tuple[str, LoadResult]:
    """``spec`` read with a layout and column map of its own, written in the contract's own layout.

    Why: a query or test set is read by many steps (evaluation, the decontamination guard, NICE's sampler, the
    validation split); reading it once with the user's options and handing on a canonical file means every
    later reader auto-detects it, and every cache keys on the canonical file's content, so a changed map is a
    changed key. The file is named by that content (``<stem>-<digest>.jsonl``) and written atomically."""
    result = load_records(spec, layout=layout, column_map=column_map, labelled=labelled)
    rows = [r.to_json() for r in result.records]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path = Path(out_dir) / f"{readers.stem(str(spec))}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.jsonl"
    if not path.is_file():
        write_jsonl(path, rows)
    return str(path), result


def jsonl_text(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write rows atomically (temp file + rename), so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(jsonl_text(rows), encoding="utf-8")
    os.replace(tmp, path)
