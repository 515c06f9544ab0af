"""Shards: finished ranges are never recomputed, interrupted ones are redone without duplicates, a grown
pool featurises only its new rows, and features are deterministic."""
from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.jobs import warm_checkpoints
from winnow.data.loaders import load_records
from winnow.features.shards import FeatureJob, featurize_range, plan_ranges
from winnow.settings import FeatureSettings, ModelSettings
from winnow.store import feature_tables, lance, record_tables, shard_markers


@pytest.fixture(scope="module")
def setup(tiny_model_path: str, tmp_path_factory):
    from pathlib import Path

    root = tmp_path_factory.mktemp("shards")
    recs = load_records(Path(__file__).parents[2] / "data" / "good" / "pool.jsonl").records
    return root, recs, warm_checkpoints(tiny_model_path, recs, root / "warm"), tiny_model_path


def _job(root, cks, model_path, table="f") -> FeatureJob:
    return FeatureJob(str(root / "db"), "pool", table, model_path, FeatureSettings(proj_dim=64, shard_size=8, batch_size=3),
                      ModelSettings(max_length=64), "gradients", cks, "adam")


def _markers(db) -> dict[str, float]:
    t = db.open_table(shard_markers.MARKERS).to_arrow()
    return dict(zip(t.column("key").to_pylist(), t.column("finished_at").to_pylist()))


def test_resume_grow_and_no_duplicates(setup) -> None:
    root, recs, cks, model_path = setup
    db = lance.connect(str(root / "db"))
    record_tables.write_records(db, "pool", recs[:12])
    feature_tables.create_feature_table(db, "f", 64, {"test": 1})
    job = _job(root, cks, model_path)
    assert plan_ranges(12, 8) == [(0, 8), (8, 12)]
    assert featurize_range(job, 0, 8, progress=False)["computed"] == 2  # two checkpoints
    before = _markers(db)
    # A crash after writing range [8, 12) but before its marker: garbage rows, no marker.
    feature_tables.write_features(db, "f", records=recs[8:12], row_idx=list(range(8, 12)), checkpoint=0,
                         vectors=np.ones((4, 64), np.float32), norms=np.ones(4), n_tokens=[1] * 4)
    results = [featurize_range(job, s, e, progress=False) for s, e in plan_ranges(12, 8)]
    assert [r["computed"] for r in results] == [0, 2]
    after = _markers(db)
    assert all(after[k] == v for k, v in before.items())  # finished shard untouched
    fm = feature_tables.read_features(db, "f")
    assert fm.ids == [r.id for r in recs[:12]] and fm.vectors.shape == (2, 12, 64)
    assert not np.allclose(fm.vectors[0, 8:], np.ones(64) / 8)  # garbage replaced
    # The pool grows: only the new rows (and the range they extend) are computed.
    record_tables.write_records(db, "pool", recs[:20])
    results = [featurize_range(job, s, e, progress=False) for s, e in plan_ranges(20, 8)]
    assert [r["computed"] for r in results] == [0, 2, 2]
    fm2 = feature_tables.read_features(db, "f")
    assert len(fm2.ids) == 20 == len(set(fm2.ids))
    np.testing.assert_array_equal(fm2.vectors[:, :8], fm.vectors[:, :8])


def test_features_are_deterministic_and_normalised(setup) -> None:
    root, recs, cks, model_path = setup
    out = []
    for name in ("det_a", "det_b"):
        db = lance.connect(str(root / name))
        record_tables.write_records(db, "pool", recs[:6])
        feature_tables.create_feature_table(db, "f", 64, {})
        job = FeatureJob(str(root / name), "pool", "f", model_path,
                         FeatureSettings(proj_dim=64, batch_size=4 if name == "det_a" else 1),
                         ModelSettings(max_length=64), "gradients", cks, "sgd")
        featurize_range(job, 0, 6, progress=False)
        out.append(feature_tables.read_features(db, "f").vectors)
    np.testing.assert_allclose(out[0], out[1], atol=2e-3)  # batch size 4 vs 1, stored as fp16
    np.testing.assert_allclose(np.linalg.norm(out[0], axis=-1), 1.0, atol=2e-3)


def test_a_failed_shard_names_its_table_rows_checkpoint_and_cause(tiny_model_path, data_dir, tmp_path) -> None:
    import shutil

    from tests.fixtures.jobs import gradient_job, warm_checkpoints
    from winnow.data.loaders import load_records
    from winnow.errors import ShardError
    from winnow.features.shards import featurize_range

    recs = load_records(data_dir / "good" / "pool.jsonl").records
    cks = warm_checkpoints(tiny_model_path, recs, tmp_path / "warm")
    job = gradient_job(str(tmp_path / "store"), tiny_model_path, recs, cks, dim=32, shard_size=5, batch_size=5)
    shutil.rmtree(cks[1].adapter_dir)  # checkpoint 1's adapter is gone (e.g. a volume not mounted on a worker)
    with pytest.raises(ShardError, match=r"shard f\[5:10\] \(gradients, checkpoint 1\) failed: \w+"):
        featurize_range(job, 5, 10, progress=False)
