"""Bytes to decoded objects: compression, text encoding and the JSON container, whatever a file holds.

A reader yields ``(line, object)`` for every record it can decode and appends a ``Quarantined`` entry (and
counts it in ``n_in``) for every stretch it cannot, so one broken record never costs its neighbours. Only
file-level problems raise (no such file, a compressed stream that is not one). Compression is detected by
magic bytes, not by name, so ``data.json`` that is really gzip is read too.
"""
from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from winnow.data.records import LoadResult, Quarantined
from winnow.errors import DataFormatError, MissingDependencyError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd")
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
TABLE_SUFFIXES = (".csv", ".tsv")
# Lists that hold the records of a JSON document (``{"data": [...]}``, as SQuAD-style and exported files do).
RECORD_LISTS = ("data", "records", "rows", "examples", "train", "instances")
# Where to pick up after a broken array element: the next element that starts an object.
_RESYNC = re.compile(r",\s*(?=\{)")
_WS = re.compile(r"\s*")


def data_suffix(path: Path) -> str:
    """The data suffix under any compression suffix: ``a.jsonl.gz`` -> ``.jsonl``."""
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def stem(spec: str) -> str:
    """The name a record without ``source`` gets: the file's stem without data and compression suffixes."""
    name = Path(spec.split(":")[0].rstrip("/")).name
    lowered = name.lower()
    for suffix in (*COMPRESSED_SUFFIXES, *JSON_SUFFIXES, ".parquet"):
        if lowered.endswith(suffix):
            name, lowered = name[: -len(suffix)], lowered[: -len(suffix)]
    return name or "data"


def describe_read(read_as: dict[str, str] | None) -> str:
    """``array, gzip, utf-8-sig``: the container, then compression and encoding when they are not the plain ones."""
    read_as = read_as or {}
    parts = [read_as.get("container"), read_as.get("compression"), read_as.get("encoding")]
    return ", ".join(p for p in parts if p and p not in ("none", "utf-8")) or "store table"


def read_bytes(path: Path, result: LoadResult) -> tuple[bytes, str]:
    """The file's bytes, decompressed, and its compression (``none``, ``gzip``, ``zstd``). A stream cut short
    keeps what came before the cut; bytes that only look compressed are read as they are. Either way one
    ``<file>`` quarantine entry says what happened."""
    raw = path.read_bytes()
    for magic, kind, unpack in ((GZIP_MAGIC, "gzip", _gunzip), (ZSTD_MAGIC, "zstd", _unzstd)):
        if raw.startswith(magic):
            data, error = unpack(raw)
            if error:
                result.n_in += 1
                result.quarantined.append(Quarantined(
                    str(path), data.count(b"\n") + 1, "<file>",
                    f"{kind} stream cut short after {len(data):,} bytes ({error})" if data else
                    f"starts like {kind} but is not a readable {kind} stream ({error}); read as plain bytes"))
            return (data, kind) if data else (raw, "none")
    return raw, "none"


def _gunzip(raw: bytes) -> tuple[bytes, str]:
    """zlib's incremental decoder, so a cut stream still gives every byte before the cut (and concatenated
    gzip members, as ``cat a.gz b.gz`` makes, all come out)."""
    out, rest = [], raw
    while rest:
        d, tail = zlib.decompressobj(16 + zlib.MAX_WBITS), b""
        try:
            for i in range(0, len(rest), 1 << 20):
                out.append(d.decompress(rest[i:i + (1 << 20)]))
                if d.eof:
                    tail = d.unused_data + rest[i + (1 << 20):]
                    break
        except zlib.error as e:
            return b"".join(out), str(e)
        if not d.eof:
            return b"".join(out), "compressed stream ended before its end marker"
        rest = tail
        if rest and not rest.startswith(GZIP_MAGIC):
            break  # trailing garbage after the last member, as gzip itself tolerates
    return b"".join(out), ""


def _unzstd(raw: bytes) -> tuple[bytes, str]:
    try:
        import zstandard
    except ImportError:
        raise MissingDependencyError("reading .zst files needs: pip install zstandard") from None
    out = io.BytesIO()
    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True) as f:
            while chunk := f.read(1 << 20):
                out.write(chunk)
    except zstandard.ZstdError as e:
        return out.getvalue(), str(e)
    return out.getvalue(), ""


def to_utf8(path: Path, data: bytes, result: LoadResult) -> tuple[bytes, str]:
    """Strip a UTF-8 byte-order mark; re-encode UTF-16 (with its BOM) as UTF-8. Returns bytes and encoding."""
    if data.startswith(UTF8_BOM):
        return data[len(UTF8_BOM):], "utf-8-sig"
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16").encode("utf-8", "surrogatepass"), "utf-16"
        except UnicodeDecodeError as e:
            result.n_in += 1
            result.quarantined.append(Quarantined(str(path), 1, "<file>", f"starts with a UTF-16 byte-order mark "
                                                                          f"but is not UTF-16 ({e.reason}); read as UTF-8"))
    return data, "utf-8"


def _decode(text: str) -> Any:
    """``json.loads`` whose every failure is a ValueError (nesting past the interpreter's depth included)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _why(e: ValueError) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg} at column {e.colno}"
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def container(data: bytes) -> tuple[str, Any]:
    """``array`` for a JSON array, ``document`` for one JSON value over several lines, else ``jsonl``; a
    document comes back parsed (the parse that recognised it), so a big pretty-printed file is decoded once."""
    head = data.lstrip()[:1]
    if head == b"[":
        return "array", None
    if head == b"{":
        first = data.lstrip().split(b"\n", 1)[0]
        try:
            _decode(first.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            try:
                return "document", _decode(data.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return "jsonl", None
    return "jsonl", None


def jsonl_objects(path: Path, data: bytes, result: LoadResult, max_line_bytes: int) -> Iterator[tuple[int, Any]]:
    """One JSON value per line; CRLF line ends are whitespace to JSON and cost nothing."""
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
            yield i, _decode(text)
        except ValueError as e:
            truncated = i == last and not data.endswith(b"\n")
            why = "truncated last line" if truncated else "malformed JSON"
            result.quarantined.append(Quarantined(str(path), i, "<line>", f"{why}: {_why(e)}"))


def array_objects(path: Path, data: bytes, result: LoadResult, max_line_bytes: int) -> Iterator[tuple[int, Any]]:
    """The elements of a JSON array, one at a time, each with the line it starts on. A broken element is
    quarantined and reading resumes at the next element that starts an object, so the rest survive.
    Invalid UTF-8 becomes lone surrogates, which the record check rejects for that element alone."""
    text = data.decode("utf-8", "surrogateescape")
    decoder = json.JSONDecoder()
    pos, line, line_pos = text.index("[") + 1, 1, 0

    def line_of(at: int) -> int:
        nonlocal line, line_pos
        line += text.count("\n", line_pos, at)
        line_pos = at
        return line

    def quarantine(at: int, reason: str) -> int:
        result.n_in += 1
        result.quarantined.append(Quarantined(str(path), line_of(at), "<element>", reason))
        m = _RESYNC.search(text, at + 1)
        return m.end() if m else len(text)

    pos = _WS.match(text, pos).end()
    while pos < len(text) and text[pos] != "]":
        try:
            obj, end = decoder.raw_decode(text, pos)
        except RecursionError:
            pos = quarantine(pos, "malformed JSON: nested too deeply")
            continue
        except ValueError as e:
            cut = not _RESYNC.search(text, pos + 1)
            pos = quarantine(pos, f"{'truncated last element' if cut else 'malformed JSON'}: {_why(e)}")
            continue
        start = pos
        pos = _WS.match(text, end).end()
        if end - start > max_line_bytes:
            pos = quarantine(start, f"element is {end - start:,} bytes, over the {max_line_bytes:,} limit")
            continue
        result.n_in += 1
        yield line_of(start), obj
        if pos < len(text) and text[pos] == ",":
            pos = _WS.match(text, pos + 1).end()
        elif pos < len(text) and text[pos] != "]":
            pos = quarantine(pos, f"expected ',' or ']' after an element, got {text[pos]!r}")


def document_objects(doc: Any, result: LoadResult) -> Iterator[tuple[int, Any]]:
    """One JSON value spread over lines (parsed by ``container``): a record, or a mapping that holds the
    records under a usual key."""
    if isinstance(doc, dict):
        for key in RECORD_LISTS:
            if isinstance(doc.get(key), list):
                for i, obj in enumerate(doc[key], start=1):
                    result.n_in += 1
                    yield i, obj
                return
    result.n_in += 1
    yield 1, doc


def parquet_objects(path: Path, result: LoadResult) -> Iterator[tuple[int, Any]]:
    """Rows of a Parquet file, read a row group at a time (a big file never sits in memory as Python objects)."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataFormatError(str(path), f"cannot read Parquet: {e}") from None
    row = 0
    for group in range(pf.num_row_groups):
        for obj in pf.read_row_group(group).to_pylist():
            row += 1
            result.n_in += 1
            yield row, obj


def delimited_objects(path: Path, data: bytes, result: LoadResult) -> Iterator[tuple[int, Any]]:
    """Rows of a CSV or TSV file with a header, as objects keyed by column (empty cells left out, so a missing
    response reads as missing). The line of each row is its first physical line, quoted newlines counted."""
    import csv

    text = data.decode("utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if data_suffix(path) == ".tsv" else ",")
    if not reader.fieldnames:
        raise DataFormatError(str(path), "no header row (the first line names the columns: prompt,response,...)")
    line = reader.line_num
    for row in reader:
        result.n_in += 1
        start, line = line + 1, reader.line_num
        extra = row.pop(None, None)  # a row with more cells than the header has
        if extra:
            result.quarantined.append(Quarantined(str(path), start, "<row>",
                                                  f"{len(extra)} cells more than the header has columns"))
            continue
        yield start, {k: v for k, v in row.items() if v not in (None, "")}
