"""A history of mixture trials as an input: one row per past run, the share of each source and its outcomes.

Teams have such tables already (RegMix's 512 proxy runs, their own sweeps). They are read with the care of the
data loaders: a row whose shares do not sum to 1 (± 1e-3, or what the shares' printed rounding allows), an
unknown source, a negative share or a duplicate
run id is a one-line error naming the file, the row's line and the field; a run with no outcome (NaN) is
quarantined with its reason, never silently dropped. Several files (a mixture table and a loss table, as
RegMix ships them) are joined on their id column.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from winnow.data.records import Quarantined
from winnow.errors import DataFormatError
from winnow.hashing import file_digest, text_digest

ID_COLUMNS = ("run", "index", "id", "trial")
TOLERANCE = 1e-3


@dataclass(frozen=True)
class History:
    """The runs (one row each: the id, the shares of ``sources``, the ``target`` outcome) and provenance."""

    frame: pd.DataFrame
    id_column: str
    sources: tuple[str, ...]
    target: str
    minimize: bool
    digest: str  # of the files' content and how they were read: keys every fit made from it
    quarantined: tuple[Quarantined, ...] = field(default_factory=tuple)

    @property
    def shares(self) -> np.ndarray:
        return self.frame[list(self.sources)].to_numpy(dtype=np.float64)

    @property
    def outcome(self) -> np.ndarray:
        """The target column, signed so that higher is better (a loss with ``minimize`` is negated)."""
        y = self.frame[self.target].to_numpy(dtype=np.float64)
        return -y if self.minimize else y


def _show(value: object) -> str:
    """A run id as the user wrote it (``2``, ``'run-7'``), not as numpy holds it."""
    return repr(value.item() if hasattr(value, "item") else value)


def sum_tolerance(shares: np.ndarray) -> float:
    """How far a row's shares may sum from 1: 1e-3, or what rounding allows when every share is printed to d
    decimals (half a unit of the last decimal per source: RegMix's 17 shares at 3 decimals sum to 0.996-1.003)."""
    finite = shares[np.isfinite(shares)]
    for d in range(1, 7):
        if finite.size and np.allclose(finite * 10 ** d, np.round(finite * 10 ** d), atol=1e-6):
            return max(TOLERANCE, shares.shape[1] * 0.5 * 10.0 ** -d)
    return TOLERANCE


def read_table(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(path, "does not exist")
    suffixes = [s.lower() for s in p.suffixes]
    if ".parquet" in suffixes:
        return pd.read_parquet(p)
    if ".csv" in suffixes or ".tsv" in suffixes:
        return pd.read_csv(p, sep="\t" if ".tsv" in suffixes else ",")
    raise DataFormatError(path, "a history is a .csv, .tsv or .parquet file (one row per run)")


def _id_column(frames: list[tuple[str, pd.DataFrame]], given: str | None) -> str:
    for name in ([given] if given else ID_COLUMNS):
        if all(name in f.columns for _, f in frames):
            return name
    path = next(p for p, f in frames if not any(c in f.columns for c in ([given] if given else ID_COLUMNS)))
    raise DataFormatError(path, f"no run id column ({given or ' / '.join(ID_COLUMNS)}); name it with --id",
                          field=given or "run")


def read_history(paths: list[str], target: str, *, sources: str | list[str] | None = None, id_column: str | None = None,
                 minimize: bool = False, expected: tuple[str, ...] | None = None) -> History:
    """The runs of ``paths`` (joined on the id column). ``sources``: the share columns (names or one glob such
    as ``train_*``); default: every other numeric column of the first file. ``expected``: sources a fitted
    surrogate knows, which the shares must match (candidates ranked by a fit)."""
    frames = [(p, read_table(p)) for p in paths]
    idc = _id_column(frames, id_column)
    for p, f in frames:
        dup = f[f[idc].duplicated(keep="first")]
        if len(dup):
            raise DataFormatError(p, f"run {_show(dup[idc].iloc[0])} appears twice (each run once)", line=int(dup.index[0]) + 2,
                                  field=idc)
    frame = frames[0][1]
    for _, f in frames[1:]:
        frame = frame.merge(f, on=idc, how="inner", suffixes=("", "_dup"))
    first_path, first = frames[0]
    if isinstance(sources, str):
        names = [c for c in first.columns if fnmatch.fnmatch(c, sources)] if any(ch in sources for ch in "*?[") \
            else [s.strip() for s in sources.split(",") if s.strip()]
    elif sources:
        names = list(sources)
    else:
        names = [c for c in first.columns if c not in (idc, target) and pd.api.types.is_numeric_dtype(first[c])]
    if not names:
        raise DataFormatError(first_path, "no share columns (name them with --sources, e.g. 'train_*')", field="sources")
    missing = [s for s in names if s not in frame.columns]
    if missing:
        raise DataFormatError(first_path, f"no column {missing[0]!r} (columns: {', '.join(map(str, frame.columns[:12]))})",
                              field=missing[0])
    if target not in frame.columns:
        where = next((p for p, f in frames if target in f.columns), first_path)
        raise DataFormatError(where, f"no outcome column {target!r} (columns: "
                                     f"{', '.join(c for c in frame.columns if c not in names and c != idc)})",
                              field="target")
    if expected is not None and tuple(names) != tuple(expected):
        unknown = [s for s in names if s not in expected]
        absent = [s for s in expected if s not in names]
        what = f"unknown source {unknown[0]!r}" if unknown else f"source {absent[0]!r} is missing"
        raise DataFormatError(first_path, f"{what}: the fit knows {', '.join(expected)}", field=(unknown or absent)[0])
    line = {rid: i + 2 for i, rid in enumerate(first[idc])}  # the header is line 1
    shares = frame[names].apply(pd.to_numeric, errors="coerce")
    tolerance = sum_tolerance(shares.to_numpy(dtype=np.float64))
    for rid, row in zip(frame[idc], shares.to_numpy(dtype=np.float64)):
        if np.isnan(row).any() or (row < -TOLERANCE).any():
            bad = names[int(np.argmax(np.isnan(row) | (row < -TOLERANCE)))]
            raise DataFormatError(first_path, f"run {_show(rid)}: share {bad!r} must be a number >= 0", line=line.get(rid),
                                  field=bad)
        if abs(row.sum() - 1.0) > tolerance:
            raise DataFormatError(first_path, f"run {_show(rid)}: shares sum to {row.sum():.4f}, not 1 (± {tolerance:g})",
                                  line=line.get(rid), field="shares")
    y = pd.to_numeric(frame[target], errors="coerce")
    quarantined = tuple(Quarantined(first_path, line.get(rid, 0), target, "no outcome (NaN or not a number)")
                        for rid, v in zip(frame[idc], y) if not np.isfinite(v))
    keep = np.isfinite(y.to_numpy(dtype=np.float64))
    shares = shares.div(shares.sum(axis=1), axis=0)  # within the tolerance: exactly on the simplex from here on
    out = pd.DataFrame({idc: frame[idc], **{s: shares[s] for s in names}, target: y})[keep].reset_index(drop=True)
    if len(out) < 2:
        raise DataFormatError(first_path, f"{len(out)} runs with an outcome: a surrogate needs at least 2", field=target)
    digest = text_digest([file_digest(*paths), idc, *names, target, str(minimize)])
    return History(out, idc, tuple(names), target, minimize, digest, quarantined)


def validate_shares(frame: pd.DataFrame, sources: tuple[str, ...], path: str) -> np.ndarray:
    """Candidate mixtures' shares in the order of ``sources`` (what a fit knows), each row checked to be on the
    simplex; a missing source is a one-line error, and so is an extra share column the fit never saw."""
    absent = [s for s in sources if s not in frame.columns]
    if absent:
        raise DataFormatError(path, f"source {absent[0]!r} is missing (the fit knows {', '.join(sources)})",
                              field=absent[0])
    prefix = _common_prefix(sources)
    unknown = [c for c in frame.columns if prefix and c.startswith(prefix) and c not in sources]
    if unknown:
        raise DataFormatError(path, f"unknown source {unknown[0]!r} (the fit knows {', '.join(sources)})",
                              field=unknown[0])
    X = frame[list(sources)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    tolerance = sum_tolerance(X)
    for i, row in enumerate(X):
        if np.isnan(row).any() or (row < -TOLERANCE).any() or abs(row.sum() - 1.0) > tolerance:
            raise DataFormatError(path, f"shares sum to {np.nansum(row):.4f}, not 1 (± {tolerance:g}), or one is not "
                                        "a number >= 0", line=i + 2, field="shares")
    return X / X.sum(axis=1, keepdims=True)


def _common_prefix(names: tuple[str, ...]) -> str:
    """The prefix every source column shares (``train_``), which marks a column as a share: '' when none."""
    import os

    prefix = os.path.commonprefix(list(names))
    return prefix if len(prefix) >= 3 else ""
