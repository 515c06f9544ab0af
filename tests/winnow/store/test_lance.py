"""The store: idempotent writes, provenance checks, shard markers, nothing non-finite stored."""
from __future__ import annotations

import numpy as np
import pytest

from winnow.data.records import parse_record
from winnow.errors import StaleArtifactError
from winnow.store import feature_tables, lance, record_tables, shard_markers


def _records(n: int, offset: int = 0):
    return [parse_record({"prompt": f"p{i}", "response": f"r{i}", "source": "s", "task": "t", "id": f"id{i}"})
            for i in range(offset, offset + n)]


def test_records_round_trip_and_append_only_new_ids(tmp_path) -> None:
    db = lance.connect(str(tmp_path))
    ref = record_tables.write_records(db, "pool", _records(5))
    assert (ref.n_rows, [r.id for r in record_tables.read_records(db, "pool")]) == (5, [f"id{i}" for i in range(5)])
    ref2 = record_tables.write_records(db, "pool", _records(7))  # 5 old + 2 new
    assert ref2.n_rows == 7 and ref2.version > ref.version
    assert [r.id for r in record_tables.read_records(db, "pool", 5, 7)] == ["id5", "id6"]
    assert record_tables.read_records(db, "pool")[3] == _records(5)[3]
    assert [r.id for r in record_tables.read_records(db, "pool", version=ref.version)] == [f"id{i}" for i in range(5)]


def _append(uri: str, offset: int) -> None:
    db = lance.connect(uri)
    for k in range(4):  # several small appends each, so the writers interleave
        record_tables.write_records(db, "pool", _records(5, offset + 5 * k))


def test_concurrent_appends_from_processes_number_rows_once(tmp_path) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(str(tmp_path), 100 * w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    t = lance.connect(str(tmp_path)).open_table("pool").to_arrow()
    assert sorted(t.column("row_idx").to_pylist()) == list(range(60))
    assert len(set(t.column("id").to_pylist())) == 60


def test_feature_writes_are_idempotent_by_key(tmp_path) -> None:
    db = lance.connect(str(tmp_path))
    feature_tables.create_feature_table(db, "f", 4, {"seed": 1})
    recs = _records(3)
    vec = np.eye(3, 4, dtype=np.float32)
    for _ in range(2):  # a re-run of the same shard
        feature_tables.write_features(db, "f", records=recs, row_idx=[0, 1, 2], checkpoint=0, vectors=vec,
                             norms=np.ones(3), n_tokens=[5, 6, 7])
    feature_tables.write_features(db, "f", records=recs, row_idx=[0, 1, 2], checkpoint=1, vectors=vec[::-1].copy(),
                         norms=np.ones(3), n_tokens=[5, 6, 7])
    fm = feature_tables.read_features(db, "f")
    assert fm.ids == ["id0", "id1", "id2"] and fm.vectors.shape == (2, 3, 4)
    np.testing.assert_array_equal(fm.vectors[0], vec)
    np.testing.assert_array_equal(fm.vectors[1], vec[::-1])


def test_non_finite_vectors_are_refused(tmp_path) -> None:
    db = lance.connect(str(tmp_path))
    feature_tables.create_feature_table(db, "f", 2, {})
    vec = np.array([[1.0, 0.0], [np.nan, 1.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="non-finite feature vectors for 1 record.*id1"):
        feature_tables.write_features(db, "f", records=_records(2), row_idx=[0, 1], checkpoint=0, vectors=vec,
                             norms=np.ones(2), n_tokens=[1, 1])
    assert db.open_table("f").count_rows() == 0


def test_other_provenance_is_stale(tmp_path) -> None:
    db = lance.connect(str(tmp_path))
    feature_tables.create_feature_table(db, "f", 2, {"seed": 1})
    feature_tables.create_feature_table(db, "f", 2, {"seed": 1})  # same provenance: reopened
    with pytest.raises(StaleArtifactError, match='stored: .*"seed": 1'):
        feature_tables.create_feature_table(db, "f", 2, {"seed": 2})
    feature_tables.create_feature_table(db, "f", 2, {"seed": 2}, overwrite=True)
    assert lance.provenance_of(db, "f") == {"seed": 2, "dim": 2, "codes": "fp16"}


@pytest.mark.parametrize("codes,tol", [("int8", 0.02), ("bit", None)])
def test_compact_codes_round_trip(tmp_path, codes: str, tol) -> None:
    rng = np.random.default_rng(0)
    v = rng.standard_normal((3, 64)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    db = lance.connect(str(tmp_path))
    feature_tables.create_feature_table(db, "f", 64, {}, codes=codes)
    feature_tables.write_features(db, "f", records=_records(3), row_idx=[0, 1, 2], checkpoint=0, vectors=v,
                         norms=np.ones(3), n_tokens=[1, 1, 1])
    out = feature_tables.read_features(db, "f").vectors[0]
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    if tol is not None:
        assert np.abs(out - v).max() < tol
    else:
        np.testing.assert_array_equal(np.sign(out), np.where(v >= 0, 1.0, -1.0))


def test_shard_marker_counts_rows(tmp_path) -> None:
    db = lance.connect(str(tmp_path))
    assert not shard_markers.is_done(db, "f", 0, 0, 64, 10)
    shard_markers.mark_done(db, "f", 0, 0, 64, 10)
    assert shard_markers.is_done(db, "f", 0, 0, 64, 10)
    assert not shard_markers.is_done(db, "f", 0, 0, 64, 20)  # the pool grew into this range
    assert not shard_markers.is_done(db, "f", 1, 0, 64, 10)  # another checkpoint


def test_appends_are_compacted_and_keep_their_versions(tmp_path) -> None:
    """Each append adds a fragment; the store merges them (Lance's optimize) and keeps old versions readable,
    since a warm-up samples its pool at a recorded version."""
    from winnow.data.records import Record
    from winnow.store import lance

    db = lance.connect(str(tmp_path / "store"))
    recs = [Record(f"r{i}", (("user", f"q{i}"), ("assistant", f"a{i}")), "s", "t") for i in range(30)]
    first = record_tables.write_records(db, "pool", recs[:10])
    for start in (10, 20):
        ref = record_tables.write_records(db, "pool", recs[start:start + 10])
    assert (ref.n_rows, ref.added) == (30, 10)
    assert len(lance.open_table(db, "pool").to_lance().get_fragments()) == 1
    assert [r.id for r in record_tables.read_records(db, "pool", version=first.version)] == [f"r{i}" for i in range(10)]
    assert record_tables.write_records(db, "pool", recs).added == 0  # ids already there are found without reading them all
