"""Training saves per-epoch checkpoints with Adam moments by name and an LR log that weights them."""
from __future__ import annotations

import pytest

from winnow.data.formatting import encode
from winnow.data.loaders import load_records
from winnow.errors import StaleArtifactError
from winnow.features.per_example import lora_modules
from winnow.models.loading import load_model, load_tokenizer
from winnow.models.lora import load_adapter
from winnow.settings import LoraSettings, TrainSettings
from winnow.training.checkpoints import load_adam_moments, read_checkpoints
from winnow.training.trainer import lr_at, train_lora


def test_lr_schedule_warms_up_then_decays() -> None:
    lrs = [lr_at(s, 100, 1.0, 0.03) for s in range(100)]
    assert lrs[:3] == pytest.approx([1 / 3, 2 / 3, 1.0]) and lrs[-1] == pytest.approx(1 / 97)
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:]))


def test_checkpoints_moments_and_weights(tiny_model_path: str, data_dir, tmp_path) -> None:
    tok = load_tokenizer(tiny_model_path)
    examples = [encode(tok, r, 64) for r in load_records(data_dir / "good" / "pool.jsonl").records]
    train = TrainSettings(epochs=3, lr=1e-2, batch_size=4)
    summary = train_lora(load_model(tiny_model_path), examples, pad_id=tok.pad_token_id, train=train,
                         lora=LoraSettings(r=4, alpha=8), out_dir=tmp_path, progress=False)
    assert summary["steps"][-1]["step"] == 15 and summary["steps"][0]["loss"] > summary["steps"][-1]["loss"]
    cks = read_checkpoints(tmp_path)
    assert [c.epoch for c in cks] == [1, 2, 3]
    # weights: each epoch's mean LR from the log, normalised; the schedule decays, so they decrease
    assert sum(c.weight for c in cks) == pytest.approx(1.0) and cks[0].weight > cks[1].weight > cks[2].weight
    model = load_adapter(load_model(tiny_model_path), cks[-1].adapter_dir, trainable=True)
    names = list(lora_modules(model))
    moments = load_adam_moments(cks[-1].optimizer_file, names)
    assert set(moments) == set(names) and all(m.abs().sum() > 0 for m, _ in moments.values())


def test_wrong_optimizer_mapping_is_a_clear_error(tiny_model_path: str, data_dir, tmp_path) -> None:
    tok = load_tokenizer(tiny_model_path)
    examples = [encode(tok, r, 64) for r in load_records(data_dir / "good" / "pool.jsonl").records[:4]]
    train_lora(load_model(tiny_model_path), examples, pad_id=tok.pad_token_id, train=TrainSettings(epochs=1),
               lora=LoraSettings(r=4, alpha=8, target_modules=("q_proj",)), out_dir=tmp_path, progress=False)
    ck = read_checkpoints(tmp_path)[0]
    with pytest.raises(StaleArtifactError, match="no moments for .* parameter.*k_proj"):
        load_adam_moments(ck.optimizer_file, ["base_model.model.model.layers.0.self_attn.k_proj.lora_A.default.weight"])


def test_checkpoints_carry_the_optimizers_constants(tiny_model_path: str, data_dir, tmp_path) -> None:
    """LESS preconditions with the betas and eps of the optimizer that made the moments: they are read back from
    the checkpoint's own log, never from a second setting that could drift; a log without them is refused."""
    import json

    tok = load_tokenizer(tiny_model_path)
    examples = [encode(tok, r, 64) for r in load_records(data_dir / "good" / "pool.jsonl").records[:4]]
    train = TrainSettings(epochs=1, adam_beta1=0.8, adam_beta2=0.99, adam_eps=1e-6)
    train_lora(load_model(tiny_model_path), examples, pad_id=tok.pad_token_id, train=train,
               lora=LoraSettings(r=4, alpha=8), out_dir=tmp_path, progress=False)
    ck = read_checkpoints(tmp_path)[0]
    assert ck.betas == (0.8, 0.99) and ck.eps == 1e-6
    log = json.loads((tmp_path / "train_log.json").read_text())
    del log["optimizer"]
    (tmp_path / "train_log.json").write_text(json.dumps(log))
    with pytest.raises(StaleArtifactError, match="betas and eps"):
        read_checkpoints(tmp_path)
