"""Batched per-example LoRA gradients equal the batch-size-1 loop; Adam preconditioning is LESS's formula."""
from __future__ import annotations

import pytest
import torch

from winnow.data.formatting import collate, encode
from winnow.data.records import parse_record
from winnow.features.gradients import adam_precondition
from winnow.features.per_example import lora_modules, loop_grads, per_example_grads
from winnow.models.loading import load_model, load_tokenizer
from winnow.models.lora import attach_lora
from winnow.settings import LoraSettings


@pytest.fixture(scope="module")
def lora_model(tiny_model_path: str):
    tok = load_tokenizer(tiny_model_path)
    model = attach_lora(load_model(tiny_model_path), LoraSettings(r=4, alpha=8, dropout=0.0), seed=0)
    torch.manual_seed(1)
    for n, p in model.named_parameters():
        if "lora_B" in n:  # B starts at zero; move it so A's gradients are non-zero too
            torch.nn.init.normal_(p, std=0.2)
    return model.eval(), tok


def _examples(tok, lengths):
    recs = [parse_record({"prompt": "what is two plus two " * k, "response": "four " * (k % 3 + 1),
                          "source": "s", "task": "t"}) for k in lengths]
    return [encode(tok, r, 256) for r in recs]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("lengths", [(1, 2, 3, 4), (5, 1), (2,)])
def test_batched_equals_loop(lora_model, side: str, lengths) -> None:
    model, tok = lora_model
    enc = _examples(tok, lengths)
    mods = lora_modules(model)
    batched, losses = per_example_grads(model, collate(enc, tok.pad_token_id, side), mods)
    loop = loop_grads(model, collate(enc, tok.pad_token_id, "right"), mods)
    for n in mods:
        rel = ((batched[n] - loop[n]).norm(dim=(1, 2)) / loop[n].norm(dim=(1, 2)).clamp(min=1e-12)).max()
        assert rel < 1e-4, (n, float(rel))
    assert losses.shape == (len(lengths),) and torch.isfinite(losses).all()


def test_one_example_gradient_does_not_depend_on_its_batch(lora_model) -> None:
    model, tok = lora_model
    enc = _examples(tok, (1, 2, 3))
    mods = lora_modules(model)
    alone, _ = per_example_grads(model, collate(enc[:1], tok.pad_token_id), mods)
    together, _ = per_example_grads(model, collate(enc, tok.pad_token_id), mods)
    for n in mods:
        torch.testing.assert_close(together[n][0], alone[n][0], rtol=1e-4, atol=1e-7)


def test_adam_step_matches_hand_computation() -> None:
    g = torch.tensor([[0.5, -2.0]])
    m, v = torch.tensor([0.1, 0.0]), torch.tensor([0.04, 1.0])
    out = adam_precondition(g, m, v, 0.9, 0.999, 1e-8)
    m2 = [0.9 * 0.1 + 0.1 * 0.5, 0.1 * -2.0]
    v2 = [0.999 * 0.04 + 0.001 * 0.25, 0.999 * 1.0 + 0.001 * 4.0]
    expected = torch.tensor([[m2[0] / (v2[0] ** 0.5 + 1e-8), m2[1] / (v2[1] ** 0.5 + 1e-8)]])
    torch.testing.assert_close(out, expected)


def test_model_without_adapter_is_refused(tiny_model_path: str) -> None:
    with pytest.raises(ValueError, match="no trainable LoRA"):
        lora_modules(load_model(tiny_model_path))


def test_batch_size_from_memory_arithmetic() -> None:
    from winnow.features.gradients import CPU_BATCH, auto_batch_size, batch_size_from_memory

    assert batch_size_from_memory(10 * 2**30, 100 * 2**20) == 71  # 0.7 × 10 GiB / 100 MiB
    assert batch_size_from_memory(2**20, 2**30) == 1 and batch_size_from_memory(2**40, 1) == 256
    assert auto_batch_size(torch.nn.Linear(2, 2), [], {}, 0) == CPU_BATCH  # CPU: a fixed small batch


def test_eps_placement_of_the_released_less_code_differs_where_v_is_tiny() -> None:
    # v' = 1e-15 (a parameter that barely moved): paper m'/(sqrt(v')+eps) = 1e-7/(3.2e-8 + 1e-8) ~ 2.4;
    # LESS code m'/sqrt(v'+eps) = 1e-7/sqrt(1e-8 + 1e-15) ~ 0.001; for a large v' the two agree.
    g = torch.tensor([[1e-6, 1.0]])
    m, v = torch.zeros(2), torch.zeros(2)
    paper = adam_precondition(g, m, v, 0.9, 0.999, 1e-8)
    code = adam_precondition(g, m, v, 0.9, 0.999, 1e-8, eps_inside=True)
    v2, m2 = 0.001 * 1e-12, 0.1 * 1e-6
    assert float(paper[0, 0]) == pytest.approx(m2 / (v2 ** 0.5 + 1e-8), rel=1e-4)  # float32 arithmetic
    assert float(code[0, 0]) == pytest.approx(m2 / (v2 + 1e-8) ** 0.5, rel=1e-4)
    assert float(paper[0, 0]) > 50 * float(code[0, 0])
    assert float(paper[0, 1]) == pytest.approx(float(code[0, 1]), rel=1e-4)
