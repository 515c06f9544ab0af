"""Rewards: label-based and label-free, a user function, a judge over HTTP with a call cap, code in the sandbox."""
from __future__ import annotations

import json
import shutil
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from winnow.data.records import parse_record
from winnow.errors import ConfigError
from winnow.evaluation.rewards import JudgeSettings, make_reward


def _rec(response: str = "Paris", **kw):
    return parse_record({"prompt": "capital of France?", "response": response, "source": "s", "task": "t", **kw})


def test_exact_and_numeric_match() -> None:
    assert make_reward("exact_match")(_rec(), " paris. ") == 1.0
    assert make_reward("exact_match")(_rec(), "Lyon") == 0.0
    assert make_reward("numeric_match")(_rec("42"), "The answer is 42.0") == 1.0
    assert make_reward("numeric_match")(_rec("42"), "41") == 0.0


@pytest.mark.parametrize("response, gold, reward", [
    ("To add 61 and 41, first add the tens: 60 + 40 = 100, then 1 + 1 = 2, so 61 + 41 = 102.", "102", 1.0),  # worked
    ("Great question! Let me think. The total comes to 1,234 apples.", "1234", 1.0),  # verbose, thousands separator
    ("She has 3 boxes of 12 eggs, so #### 36", "Natalia sold 48/2 = 24 clips... #### 36", 1.0),  # GSM8K markers
    ("61 + 41 = 10", "102", 0.0),  # cut before its result: scored as what it says
    ("61 plus 41 is", "102", 0.0),  # the first number is not the answer
    ("The answer is -3.5.", "-3.5", 1.0), ("no number here", "7", 0.0),
])
def test_numeric_match_reads_the_final_answer_as_graders_do(response: str, gold: str, reward: float) -> None:
    assert make_reward("numeric_match")(_rec(gold), response) == reward


@pytest.mark.parametrize("response, gold, includes, fuzzy", [
    ("Russia", "Russia", 1.0, 1.0),
    ("The largest country is Russia.", "russia", 1.0, 1.0),  # verbose: both graders find the gold in it
    ("russia", "Russia", 1.0, 1.0),                          # Includes with ignore_case, FuzzyMatch normalises
    ("Canada", "Russia", 0.0, 0.0),
    ("Russ", "Russia", 0.0, 1.0),     # cut short: only FuzzyMatch's other direction (response within gold) holds
    ("The", "Russia", 0.0, 0.0),      # an article normalises to nothing, and nothing matches only nothing
    ("", "Russia", 0.0, 0.0),
])
def test_includes_and_fuzzy_match_grade_as_openai_evals(response: str, gold: str, includes: float,
                                                        fuzzy: float) -> None:
    assert make_reward("includes")(_rec(gold), response) == includes
    assert make_reward("fuzzy_match")(_rec(gold), response) == fuzzy


def test_user_function_gets_no_label_dependence(monkeypatch) -> None:
    import types, sys

    mod = types.ModuleType("my_rewards")
    mod.length_reward = lambda prompt, response: float(len(response))
    seen = []
    mod.graded = lambda prompt, response, label: seen.append(label) or float(response == label)
    monkeypatch.setitem(sys.modules, "my_rewards", mod)
    r = make_reward("my_rewards:length_reward")
    assert not r.needs_label and r(_rec(), "abc") == 3.0  # two parameters: never handed the gold answer
    graded = make_reward("my_rewards:graded")
    assert graded.needs_label and graded(_rec(), "Paris") == 1.0 and seen == ["Paris"]
    with pytest.raises(ConfigError, match="cannot load"):
        make_reward("my_rewards:nope")


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
def test_code_reward_runs_tests_in_the_sandbox_and_needs_no_label() -> None:
    rec = parse_record({"prompt": "write add(a, b)", "response": "x", "source": "s", "task": "code",
                        "tests": "assert add(2, 3) == 5"})
    r = make_reward("code")
    assert not r.needs_label
    assert r(rec, "```python\ndef add(a, b):\n    return a + b\n```") == 1.0
    assert r(rec, "def add(a, b):\n    return a - b") == 0.0
    assert r(rec, "import os\nos.system('rm -rf ~')\ndef add(a, b): return a + b") == 1.0  # contained


@contextmanager
def _judge_server(reply):
    """An OpenAI-compatible endpoint on loopback: ``reply(body) -> (status, json)``; yields its base URL and the
    requests it received (bodies and Authorization headers)."""
    seen: list[tuple[dict, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((body, self.headers.get("Authorization")))
            status, payload = reply(body)
            out = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", seen
    finally:
        server.shutdown()


def _rating(text: str) -> tuple[int, dict]:
    return 200, {"choices": [{"message": {"content": text}}]}


def test_judge_over_loopback_http_with_cap() -> None:
    with _judge_server(lambda body: _rating("7")) as (url, seen):
        judge = make_reward("judge", judge=JudgeSettings(url, "m", max_calls=2, timeout_s=5))
        assert judge(_rec(), "Paris") == pytest.approx(0.7) and judge(_rec(), "x") == pytest.approx(0.7)
        with pytest.raises(ConfigError, match="cap of 2 calls"):
            judge(_rec(), "again")
        assert seen[0][0]["model"] == "m" and "Paris" in seen[0][0]["messages"][1]["content"]
    with pytest.raises(ConfigError, match="off by default"):
        make_reward("judge")


def test_judge_counts_refusals_and_timeouts_and_sends_its_key() -> None:
    import time

    replies = iter([_rating("I cannot rate that."), (503, {}), _rating("9"), "slow"])

    def reply(body):
        r = next(replies)
        if r == "slow":
            time.sleep(1.5)
            return _rating("5")
        return r

    with _judge_server(reply) as (url, seen):
        settings = JudgeSettings(url, "m", api_key="sk-test", timeout_s=0.5)
        judge = make_reward("judge", judge=settings)
        assert [judge(_rec(), "x") for _ in range(4)] == [0.0, 0.0, pytest.approx(0.9), 0.0]
        assert judge.counters == {"calls": 4, "timeouts": 1, "refusals": 2}
        assert seen[0][1] == "Bearer sk-test" and "sk-test" not in repr(settings)


def test_the_judge_cap_holds_for_the_whole_run() -> None:
    from winnow.evaluation.rewards import split_calls

    assert split_calls(1000, 8) == 125 and 8 * split_calls(1001, 8) <= 1001
    with pytest.raises(ConfigError, match="cannot cover 8 reward tasks"):
        split_calls(5, 8)


def test_reward_model_scores_prompt_and_response(tiny_model_path, tmp_path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    cfg = LlamaConfig.from_pretrained(tiny_model_path, num_labels=1)
    torch.manual_seed(0)
    LlamaForSequenceClassification(cfg).save_pretrained(tmp_path / "rm", safe_serialization=True)
    tok.save_pretrained(tmp_path / "rm")
    r = make_reward("reward-model", reward_model=str(tmp_path / "rm"))
    assert not r.needs_label
    a, b = r(_rec(), "paris"), r(_rec(), "the quick brown fox jumps")
    assert isinstance(a, float) and a == r(_rec(), "paris") and a != b  # deterministic, response-dependent
    with pytest.raises(ConfigError, match="needs a model directory"):
        make_reward("reward-model")


def test_which_metrics_need_a_label() -> None:
    from winnow.evaluation.rewards import needs_label

    assert needs_label("exact_match") and needs_label("numeric_match")
    assert needs_label("includes") and needs_label("fuzzy_match")
    assert not needs_label("code") and not needs_label("reward-model") and not needs_label("judge")
    assert not needs_label("tests.fixtures.rewards:length")  # (prompt, response): label-free


def test_curation_arms_follow_the_query_labels() -> None:
    """A prompts-only query set runs NICE against random (distances in NICE's space) for a label-free metric,
    and is a one-line error for a metric that needs the label or for no metric at all."""
    from winnow.recipe import curation
    from winnow.settings import build_settings

    labelled = curation("p", "q", "t", build_settings(None, ["nice.metric=exact_match"]))
    assert [a.name for a in labelled.arms] == ["selected", "random", "nice"] and labelled.needs_query_table()
    free = curation("p", "q", "t", build_settings(None, ["nice.metric=tests.fixtures.rewards:length"]), unlabelled=3)
    assert [(a.name, a.representation) for a in free.arms] == [("nice", "nice"), ("random", "nice")]
    assert not free.needs_query_table()
    for overrides in (["nice.metric=exact_match"], []):
        with pytest.raises(ConfigError, match="3 queries have no response"):
            curation("p", "q", "t", build_settings(None, overrides), unlabelled=3)
