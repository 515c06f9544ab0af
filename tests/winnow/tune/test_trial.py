"""A checked fine-tune on the tiny model: a pruned trial costs only the epochs it ran, a finished one is kept
under its key and replayed (no training) when the same configuration comes again."""
from __future__ import annotations

from winnow.data.loaders import load_records
from winnow.settings import EvalSettings, LoraSettings, ModelSettings, TrainSettings
from winnow.tune.trial import train_with_checks


def test_pruning_stops_training_and_a_finished_fine_tune_is_replayed(tiny_model_path: str, data_dir, tmp_path) -> None:
    records = load_records(data_dir / "good" / "pool.jsonl").records  # 20 examples: 5 steps per epoch at batch 4
    val = load_records(data_dir / "good" / "test.jsonl").records
    common = dict(model_path=tiny_model_path, model=ModelSettings(max_length=64), lora=LoraSettings(r=4, alpha=8),
                  train=TrainSettings(epochs=3, lr=1e-2, batch_size=4), eval_settings=EvalSettings(max_new_tokens=2),
                  score="neg_loss")
    seen: list[tuple[int, float]] = []
    cut = train_with_checks(records, val, out_dir=tmp_path / "cut", report=lambda e, v: seen.append((e, v)) or True,
                            **common)
    assert cut["pruned"] and cut["steps"] == 5 and [h["epoch"] for h in cut["history"]] == [1]
    assert not (tmp_path / "cut" / "epoch-2").exists() and not (tmp_path / "cut" / "val_history.json").exists()

    full = train_with_checks(records, val, out_dir=tmp_path / "full", report=lambda e, v: False, **common)
    values = [h["value"] for h in full["history"]]
    assert not full["pruned"] and full["steps"] == 15 and len(values) == 3
    assert values[-1] > values[0]  # minus the validation loss rises as the adapter learns the pool's format
    assert cut["history"][0]["value"] == seen[0][1]

    replayed = []
    again = train_with_checks(records, val, out_dir=tmp_path / "full",
                              report=lambda e, v: replayed.append(v) or False, **common)
    assert again["steps"] == 0 and again["reused"] and replayed == values and again["adapter"] == full["adapter"]
