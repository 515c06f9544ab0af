"""Gradient shards on a real multi-process Dask cluster give the same features from 1 and 2 workers."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.integration


def test_one_and_two_workers_give_identical_features(prefect_harness, tiny_model_path, data_dir, tmp_path) -> None:
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    from flows.featurize import run_feature_shards
    from winnow.data.formatting import encode
    from winnow.data.loaders import load_records
    from winnow.features.shards import FeatureJob, plan_ranges
    from winnow.models.loading import load_model, load_tokenizer
    from winnow.settings import FeatureSettings, LoraSettings, ModelSettings, TrainSettings
    from winnow.store import lance
    from winnow.training.checkpoints import read_checkpoints
    from winnow.training.trainer import train_lora

    recs = load_records(data_dir / "good" / "pool.jsonl").records
    tok = load_tokenizer(tiny_model_path)
    train_lora(load_model(tiny_model_path), [encode(tok, r, 64) for r in recs[:8]], pad_id=tok.pad_token_id,
               train=TrainSettings(epochs=2, lr=1e-2), lora=LoraSettings(r=4, alpha=8), out_dir=tmp_path / "warm",
               progress=False)
    cks = tuple(read_checkpoints(tmp_path / "warm"))
    vectors = []
    for workers in (1, 2):
        uri = str(tmp_path / f"store{workers}")
        db = lance.connect(uri)
        lance.write_records(db, "pool", recs)
        lance.create_feature_table(db, "f", 128, {"workers-test": 1})
        job = FeatureJob(uri, "pool", "f", tiny_model_path, FeatureSettings(proj_dim=128, shard_size=5, batch_size=3),
                         ModelSettings(max_length=64), "gradients", cks, "adam")
        runner = DaskTaskRunner(cluster_class="distributed.LocalCluster",
                                cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                                "host": "127.0.0.1", "dashboard_address": None})

        @flow(task_runner=runner)
        def featurise() -> dict:
            return run_feature_shards([{"job": job, "ranges": plan_ranges(len(recs), 5)}])

        assert featurise() == {"shards": 4, "computed": 4, "skipped": 0}
        vectors.append(lance.read_features(db, "f").vectors)
    np.testing.assert_array_equal(vectors[0], vectors[1])
