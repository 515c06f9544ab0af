"""Ingest → retrain → ingest more → retrain: only new rows are featurised, and the new adapter is compared
with the previous one."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

OVERRIDES = ["model.max_length=64", "warmup.fraction=0.5", "warmup.train.epochs=2", "warmup.train.lr=0.01",
             "features.proj_dim=128", "features.shard_size=5", "features.batch_size=5", "selection.budget=4",
             "finetune.epochs=1", "finetune.lr=0.01", "eval.max_new_tokens=3"]


def _settings(overrides: list[str], model: str) -> dict:
    from winnow.settings import build_settings

    return build_settings(None, [*overrides, f"model.name={model}"]).model_dump(mode="json")


def test_ingest_then_retrain_featurises_only_new_rows(prefect_harness, tiny_model_path, data_dir, tmp_path) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.ingest import ingest_flow
    from flows.retrain import retrain
    from winnow.store import lance, ledger

    lines = (data_dir / "good" / "pool.jsonl").read_text().splitlines(keepends=True)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text("".join(lines[:10]))
    store, work = str(tmp_path / "store"), str(tmp_path / "work")
    run = retrain.with_options(task_runner=ThreadPoolTaskRunner(max_workers=1))
    kw = dict(pool_table="pool", query=str(data_dir / "good" / "query.jsonl"), test=str(data_dir / "good" / "test.jsonl"),
              out=str(tmp_path / "runs"), settings=_settings(OVERRIDES, tiny_model_path), store_uri=store,
              work_dir=work)

    assert ingest_flow([str(inbox)], "pool", store)["new_rows"] == 10
    first = run(**kw)
    assert not first["skipped"] and set(first["results"]) == {"base", "new"}

    (inbox / "b.jsonl").write_text("".join(lines[10:]))  # a new file lands; a.jsonl is not read again
    again = ingest_flow([str(inbox)], "pool", store)
    assert (again["new_rows"], again["table_rows"]) == (10, 20)
    second = run(**kw)
    assert set(second["results"]) == {"base", "previous", "new"}
    assert second["results"]["previous"] == first["results"]["new"]
    # the 2 pool shards of new rows are computed; the 2 old pool shards and the query shard are not
    assert second["shards"] == {"computed": 2, "skipped": 3}
    assert "| previous |" in (tmp_path / "runs").joinpath(f"v{lance.connect(store).open_table('pool').version}",
                                                          "report.md").read_text()

    assert ingest_flow([str(inbox)], "pool", store)["new_rows"] == 0  # both files are in the ledger
    assert run(**{**kw, "min_new_rows": 1})["skipped"]
    db = lance.connect(store)
    assert [e["n_rows"] for e in ledger.entries(db, ledger.RETRAINS, "pool")] == [10, 20]
    assert len(ledger.entries(db, ledger.INGESTED, "pool")) == 2
    assert json.loads((tmp_path / "runs" / "v2" / "metrics.json").read_text())["entry"]["new_rows"] == 10

    # A changed LoRA setting starts a new line: its own warm-up, no previous adapter to beat, and the report says why.
    changed = run(**{**kw, "settings": _settings([*OVERRIDES, "warmup.lora.r=4"], tiny_model_path), "min_new_rows": 1})
    assert not changed["skipped"] and set(changed["results"]) == {"base", "new"}
    entries = ledger.entries(lance.connect(store), ledger.RETRAINS, "pool")
    assert len({e["line"] for e in entries}) == 2 and entries[-1]["warmup"]["dir"] != entries[0]["warmup"]["dir"]
    version = lance.connect(store).open_table("pool").version
    assert "a new line of retrains" in (tmp_path / "runs" / f"v{version}" / "report.md").read_text()
