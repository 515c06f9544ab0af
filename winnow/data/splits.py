"""Held-out splits by id: a record's side depends only on its id and the seed, so a split is the same on
every machine and a grown file keeps its old records on the side they were on."""
from __future__ import annotations

import hashlib

from winnow.data.records import Record


def side(record_id: str, share: float, seed: int) -> bool:
    """True when the record falls in the ``share`` (the first part)."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{record_id}".encode()).digest()[:8], "big")
    return h / 2 ** 64 < share


def split_by_id(records: list[Record], share: float, seed: int) -> tuple[list[Record], list[Record]]:
    """(the ``share`` part, the rest), each in file order; both sides non-empty when there are two records."""
    in_first = [side(r.id, share, seed) for r in records]  # hashed once per record
    first = [r for r, f in zip(records, in_first) if f]
    rest = [r for r, f in zip(records, in_first) if not f]
    if len(records) >= 2 and not (first and rest):  # a tiny file the hash put on one side
        order = sorted(records, key=lambda r: hashlib.sha256(f"{seed}:{r.id}".encode()).digest())
        k = min(len(records) - 1, max(1, round(share * len(records))))
        chosen = {r.id for r in order[:k]}
        first, rest = [r for r in records if r.id in chosen], [r for r in records if r.id not in chosen]
    return first, rest
