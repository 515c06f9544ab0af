"""The CUDA branch computes what the CPU branch computes: per-example gradients, projections and features.

Marked ``gpu``: skipped where CUDA is absent (CI), run by ``bench/gpu.sh`` on a GPU machine. The module needs
no conftest fixture (``bench/gpu.sh`` runs it with ``--noconftest``, as a GPU image holds no Prefect or Dask),
so it builds its own tiny model.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tests.fixtures.tiny import make_tiny_model
from winnow.data.formatting import collate, encode
from winnow.data.records import parse_record
from winnow.features.gradients import gradient_features
from winnow.features.per_example import lora_modules, per_example_grads
from winnow.features.projection import Projector
from winnow.models.loading import load_model, load_tokenizer, resolve_device
from winnow.models.lora import attach_lora
from winnow.settings import LoraSettings

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = str(make_tiny_model(tmp_path_factory.mktemp("tiny-cuda") / "tiny"))
    tok = load_tokenizer(path)
    cpu = attach_lora(load_model(path, device="cpu"), LoraSettings(r=4, alpha=8, dropout=0.0), seed=0)
    torch.manual_seed(1)
    for n, p in cpu.named_parameters():
        if "lora_B" in n:  # B starts at zero; move it so A's gradients are non-zero too
            torch.nn.init.normal_(p, std=0.2)
    cuda = copy.deepcopy(cpu).to("cuda")
    return cpu.eval(), cuda.eval(), tok


def _examples(tok, n: int = 12):
    recs = [parse_record({"prompt": "what is two plus two " * (k % 5 + 1), "response": "four " * (k % 3 + 1),
                          "source": "s", "task": "t"}) for k in range(n)]
    return [encode(tok, r, 128) for r in recs]


def test_auto_device_is_cuda() -> None:
    assert resolve_device("auto").type == "cuda"


def test_per_example_gradients_on_cuda_equal_cpu(models) -> None:
    cpu, cuda, tok = models
    batch = collate(_examples(tok, 4), tok.pad_token_id)
    on_cpu, _ = per_example_grads(cpu, batch, lora_modules(cpu))
    on_cuda, _ = per_example_grads(cuda, {k: v.cuda() for k, v in batch.items()}, lora_modules(cuda))
    for n, g in on_cpu.items():
        torch.testing.assert_close(on_cuda[n].cpu(), g, rtol=1e-3, atol=1e-5)


def test_projection_on_cuda_equals_cpu() -> None:
    x = torch.randn(5, 3000)
    a = Projector("sjlt", 256, seed=3).project("w", x)
    b = Projector("sjlt", 256, seed=3).project("w", x.cuda()).cpu()
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_features_on_cuda_equal_cpu_and_bf16_stays_close(models) -> None:
    cpu, cuda, tok = models
    enc = _examples(tok)
    kw = dict(pad_id=tok.pad_token_id, batch_size=4, progress=False)
    ref, _ = gradient_features(cpu, enc, lora_modules(cpu), Projector("sjlt", 512, seed=0), **kw)
    got, _ = gradient_features(cuda, enc, lora_modules(cuda), Projector("sjlt", 512, seed=0), **kw)
    assert np.min((ref * got).sum(axis=1)) > 0.9999
    bf16, _ = gradient_features(cuda, enc, lora_modules(cuda), Projector("sjlt", 512, seed=0), autocast_bf16=True, **kw)
    assert np.min((ref * bf16).sum(axis=1)) > 0.98
