"""lm-evaluation-harness on the tiny model: a local task YAML over a local file, offline, with an adapter."""
from __future__ import annotations

import json
import math

import pytest
import torch

pytest.importorskip("lm_eval")

from winnow.data.formatting import IGNORE, Encoded  # noqa: E402
from winnow.errors import ConfigError  # noqa: E402
from winnow.evaluation.harness import harness_adapter  # noqa: E402
from winnow.models.loading import load_model, load_tokenizer  # noqa: E402
from winnow.models.lora import load_adapter  # noqa: E402
from winnow.settings import LoraSettings, ModelSettings, TrainSettings  # noqa: E402
from winnow.training.trainer import train_lora  # noqa: E402

ITEMS = [("is 40 even?", "yes"), ("is 41 even?", "no"), ("is 43 even?", "no"), ("is 44 even?", "yes")]
# A loglikelihood task: lm-eval's perplexity is exp(−mean summed log-likelihood of the answer after the prompt),
# a continuous function of the model, so it pins exactly which model lm-eval evaluated.
TASK = """task: winnow_tiny_parity
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
"""


@pytest.fixture
def local_task(tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    data = folder / "parity.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in ITEMS))
    (folder / "parity.yaml").write_text(TASK.format(data=data))
    return folder


def _perplexity(net, tok) -> float:
    """What the task measures, computed here: exp(−mean over items of Σ log p(answer tokens | prompt)), the
    answer's tokens being those the whole text has after the prompt's (as lm-eval splits them; a loglikelihood
    task puts no delimiter between the two)."""
    total = []
    for q, a in ITEMS:
        p = tok(f"Question: {q}\nAnswer:", add_special_tokens=False)["input_ids"]
        r = tok(f"Question: {q}\nAnswer:{a}", add_special_tokens=False)["input_ids"][len(p):]  # lm-eval: no delimiter
        with torch.no_grad():
            logp = torch.log_softmax(net(input_ids=torch.tensor([p + r])).logits[0, :-1].double(), -1)
        total.append(sum(float(logp[len(p) - 1 + i, t]) for i, t in enumerate(r)))
    return math.exp(-sum(total) / len(total))


def test_local_task_scores_base_and_adapter(tiny_model_path, local_task, tmp_path, monkeypatch) -> None:
    """lm-eval's number for base and for base + adapter equals the same quantity computed directly on each
    model, and the two differ: the harness evaluates the adapter (merged), not the base it was given."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    model = ModelSettings(name=tiny_model_path, max_length=64)
    tok = load_tokenizer(tiny_model_path)
    examples = []
    for q, a in ITEMS:
        p = tok(f"Question: {q}\nAnswer:", add_special_tokens=False)["input_ids"]
        r = tok(f"Question: {q}\nAnswer:{a}", add_special_tokens=False)["input_ids"][len(p):]
        examples.append(Encoded(p + r, [IGNORE] * len(p) + r, False))
    train_lora(load_model(tiny_model_path), examples * 4, pad_id=tok.pad_token_id,
               train=TrainSettings(epochs=4, lr=0.05, batch_size=4, warmup_ratio=0.0), lora=LoraSettings(),
               out_dir=tmp_path / "adapter", save_checkpoints=False, progress=False)
    adapter = tmp_path / "adapter" / "epoch-4" / "adapter"
    tuned = harness_adapter(tiny_model_path, str(adapter), ["winnow_tiny_parity"], model=model,
                            include_path=str(local_task))["winnow_tiny_parity"]
    base = harness_adapter(tiny_model_path, None, ["winnow_tiny_parity"], model=model,
                           include_path=str(local_task))["winnow_tiny_parity"]
    want_base = _perplexity(load_model(tiny_model_path).eval(), tok)
    want_tuned = _perplexity(load_adapter(load_model(tiny_model_path), adapter).merge_and_unload().eval(), tok)
    assert base["perplexity"] == pytest.approx(want_base, rel=1e-4) and base["n"] == 4
    assert tuned["perplexity"] == pytest.approx(want_tuned, rel=1e-4)
    assert tuned["perplexity"] < 0.9 * base["perplexity"]  # training on the answers made them likelier


def test_unknown_task_is_a_config_error(tiny_model_path, local_task) -> None:
    with pytest.raises(ConfigError, match="unknown task"):
        harness_adapter(tiny_model_path, None, ["no_such_task_anywhere"], model=ModelSettings(name=tiny_model_path),
                        include_path=str(local_task))
