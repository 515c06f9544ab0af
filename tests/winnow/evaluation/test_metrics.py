"""The evaluation's metrics against values computed by hand, and each metric end to end on the tiny model."""
from __future__ import annotations

import json

import shutil

import numpy as np
import pytest
import torch

from winnow.data.formatting import encode
from winnow.data.records import Record, parse_record
from winnow.errors import ConfigError
from winnow.evaluation.evaluate import evaluate, multiple_choice
from winnow.evaluation.metrics import pass_at_k, squad_normalize, token_f1
from winnow.settings import EvalSettings


@pytest.mark.parametrize("pred, gold, f1", [
    ("the Eiffel Tower", "Eiffel Tower in Paris", 2 / 3),  # P = 2/2, R = 2/4 (articles dropped)
    ("Paris, France.", "paris", 2 / 3),                     # P = 1/2, R = 1/1
    ("an apple", "The apple!", 1.0), ("Lyon", "Paris", 0.0), ("", "", 1.0), ("the", "Paris", 0.0),
    ("cat cat dog", "cat dog dog", 2 / 3),                  # bag overlap: min counts 1 + 1 = 2 of 3 each
])
def test_token_f1_by_hand(pred: str, gold: str, f1: float) -> None:
    assert token_f1(pred, gold) == pytest.approx(f1)


def test_squad_normalisation() -> None:
    assert squad_normalize("  The  Quick, brown fox!! ") == "quick brown fox"


@pytest.mark.parametrize("n, c, k, want", [
    (10, 1, 1, 0.1), (5, 2, 2, 1 - 3 / 10), (5, 0, 3, 0.0), (4, 3, 2, 1.0), (20, 4, 10, 1 - 8008 / 184756)])
def test_pass_at_k_is_the_unbiased_estimator(n: int, c: int, k: int, want: float) -> None:
    # 1 - C(n-c, k) / C(n, k): C(3, 2) = 3, C(5, 2) = 10; C(16, 10) = 8008, C(20, 10) = 184756
    assert pass_at_k(n, c, k) == pytest.approx(want)


def test_pass_at_k_needs_enough_samples() -> None:
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 5)


def _tiny(path: str):
    from winnow.models.loading import load_model, load_tokenizer

    return load_model(path, device="cpu"), load_tokenizer(path)


def _summed_nll(model, tok, record: Record) -> float:
    enc = encode(tok, record, 128, open_ended=True)
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
    labels = torch.tensor(enc.labels[1:])
    mask = labels != -100
    return float(-logp[mask.nonzero()[:, 0], labels[mask]].sum())


def test_multiple_choice_picks_the_most_likely_choice(tiny_model_path: str) -> None:
    """Direction pinned by an outcome: a random model gives every token about log V nats, so a one-token choice
    is far likelier than a twelve-token one and must be picked; and the batched scores equal one-by-one sums."""
    model, tok = _tiny(tiny_model_path)
    long = "the lazy dog jumps over the quick brown fox again and again"
    recs = [parse_record({"prompt": f"question {i}", "choices": ([long, "a"] if i % 2 else ["a", long]), "answer": 0,
                          "source": "s", "task": "t"}) for i in range(4)]
    picks = multiple_choice(model, tok, recs, batch_size=3, max_length=128)
    assert [r.choices[p] for r, p in zip(recs, picks)] == ["a"] * 4
    for r, p in zip(recs, picks):
        nll = [_summed_nll(model, tok, Record("x", (*r.messages[:-1], ("assistant", c)), "s", "t")) for c in r.choices]
        assert p == int(np.argmin(nll))
    out = evaluate(model, tok, recs, EvalSettings(metric="mc_accuracy"), max_length=128, progress=False)
    assert out.metric == "mc_accuracy" and out.score == pytest.approx(0.5)  # gold is choice 0: "a" half the time
    assert [p["score"] for p in out.predictions] == [1.0, 0.0, 1.0, 0.0]


def test_multiple_choice_without_choices_is_a_config_error(tiny_model_path: str) -> None:
    model, tok = _tiny(tiny_model_path)
    rec = parse_record({"prompt": "q", "response": "a", "source": "s", "task": "t"})
    with pytest.raises(ConfigError, match="no 'choices'"):
        evaluate(model, tok, [rec], EvalSettings(metric="mc_accuracy"), max_length=64, progress=False)


def test_token_f1_and_losses_end_to_end(tiny_model_path: str) -> None:
    model, tok = _tiny(tiny_model_path)
    recs = [parse_record({"prompt": f"say {w}", "response": w, "source": "s", "task": "t"}) for w in ("cat", "dog")]
    out = evaluate(model, tok, recs, EvalSettings(metric="token_f1", max_new_tokens=4), max_length=64, progress=False)
    assert out.metric == "token_f1" and 0 <= out.score <= 1 and out.response_loss > 0
    assert [p["score"] for p in out.predictions] == [token_f1(p["prediction"], p["gold"]) for p in out.predictions]


def test_each_record_may_name_its_own_metric(tiny_model_path: str, tmp_path) -> None:
    """A mixed suite: multiple-choice records (metric mc_accuracy) beside generated answers, one scored by a
    user's reward named on the record, one by eval.metric. Outcomes pinned: the one-token choice wins where it is
    gold (1) and loses where it is not (0); the user's reward sees the greedy answer; exact match against an
    answer never said is 0; the score is the mean over all records, and each metric's share is reported. An
    unknown metric is quarantined, naming the field."""
    from winnow.data.loaders import read_records

    model, tok = _tiny(tiny_model_path)
    long = "the lazy dog jumps over the quick brown fox again and again"
    mc = [parse_record({"prompt": f"question {i}", "choices": ["a", long], "answer": i, "metric": "mc_accuracy",
                        "source": "s", "task": "t"}) for i in range(2)]
    prompt = {"prompt": "say something", "response": "zzz never said", "source": "s", "task": "t"}
    user = parse_record({**prompt, "metric": "tests.fixtures.rewards:length"})
    out = evaluate(model, tok, [mc[0], user, mc[1], parse_record(prompt)],
                   EvalSettings(metric="exact_match", max_new_tokens=4), max_length=128, progress=False)
    preds = out.predictions
    assert [p["score"] for p in preds] == [1.0, float(len(preds[1]["prediction"].strip())), 0.0, 0.0]
    assert [p["metric"] for p in preds] == ["mc_accuracy", "tests.fixtures.rewards:length", "mc_accuracy", "exact_match"]
    assert out.score == pytest.approx(np.mean([p["score"] for p in preds]))
    assert out.metric == "mc_accuracy + tests.fixtures.rewards:length + exact_match"
    assert out.by_metric["mc_accuracy"] == {"n": 2, "score": 0.5} and out.by_metric["exact_match"]["n"] == 1
    path = tmp_path / "suite.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [{**prompt, "metric": "bleu"},
                                                           {**prompt, "metric": "token_f1"}]))
    res = read_records(path)
    assert [r.metric for r in res.records] == ["token_f1"] and res.records[0].to_json()["metric"] == "token_f1"
    assert [(q.line, q.field) for q in res.quarantined] == [(1, "metric")]


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
def test_pass_at_k_samples_and_runs_the_tests(tiny_model_path: str) -> None:
    """n samples per problem, each run with the problem's tests in the sandbox: tests that always fail give
    pass@k = 0 with every sample counted; the estimator over the counts is the unbiased one."""
    model, tok = _tiny(tiny_model_path)
    rec = parse_record({"prompt": "write f", "response": "def f():\n    return 1", "tests": "assert False",
                        "source": "s", "task": "t"})
    out = evaluate(model, tok, [rec], EvalSettings(metric="pass@2", samples=3, max_new_tokens=4), max_length=64,
                   progress=False)
    p = out.predictions[0]
    assert (p["samples"], p["passed"], out.score) == (3, 0, 0.0)


def test_reward_model_metric_through_the_evaluation(tiny_model_path: str, tmp_path) -> None:
    """eval.metric=reward-model scores each greedy answer with the reward model that NICE's settings name
    (one configuration for selecting and evaluating): the per-example scores are that model's scores."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from winnow.evaluation.evaluate import metric_reward
    from winnow.settings import build_settings

    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    torch.manual_seed(0)
    LlamaForSequenceClassification(LlamaConfig.from_pretrained(tiny_model_path, num_labels=1)).save_pretrained(
        tmp_path / "rm", safe_serialization=True)
    tok.save_pretrained(tmp_path / "rm")
    settings = build_settings(None, ["eval.metric=reward-model", f"nice.reward_model={tmp_path / 'rm'}",
                                     "eval.max_new_tokens=4"]).eval
    assert settings.reward_model == str(tmp_path / "rm")  # taken from nice.reward_model
    model, tok2 = _tiny(tiny_model_path)
    recs = [parse_record({"prompt": f"say {w}", "response": w, "source": "s", "task": "t"}) for w in ("cat", "dog")]
    out = evaluate(model, tok2, recs, settings, max_length=64, progress=False)
    reward = metric_reward(settings)
    assert out.metric == "reward-model"
    assert [p["score"] for p in out.predictions] == pytest.approx([reward(r, p["prediction"])
                                                                      for r, p in zip(recs, out.predictions)])


def test_judge_metric_through_evaluate(tiny_model_path: str) -> None:
    """eval.metric=judge end to end: each greedy answer goes to the (loopback) judge with the key, its 0-10
    rating becomes the score, a refusal scores 0 and is counted, and the counters reach the evaluation."""
    from tests.winnow.evaluation.test_rewards import _judge_server, _rating

    model, tok = _tiny(tiny_model_path)
    recs = [parse_record({"prompt": f"capital of country {i}?", "response": "Paris", "source": "s", "task": "t"})
            for i in range(2)]
    replies = iter([_rating("8"), _rating("I cannot rate that.")])
    with _judge_server(lambda body: next(replies)) as (url, seen):
        out = evaluate(model, tok, recs, EvalSettings(metric="judge", judge_url=url, judge_model="m", max_new_tokens=4),
                       max_length=64, progress=False, judge_api_key="sk-eval")
    assert [p["score"] for p in out.predictions] == [pytest.approx(0.8), 0.0] and out.score == pytest.approx(0.4)
    assert out.metric == "judge" and out.counters == {"calls": 2, "timeouts": 0, "refusals": 1}
    assert all(auth == "Bearer sk-eval" for _, auth in seen)
    asked = seen[0][0]["messages"][1]["content"]
    assert "capital of country 0?" in asked and out.predictions[0]["prediction"] in asked
