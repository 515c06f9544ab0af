"""Rewards, NICE's targets and the evaluation's generation metrics alike: ``reward(record, response) -> float``.

- ``exact_match`` / ``numeric_match`` / ``token_f1`` / ``includes`` / ``fuzzy_match``: against the record's gold
  response (needs a label);
- ``code``: the response, then the record's ``tests`` (asserts), run in the sandbox: 1 if they pass;
- ``reward-model``: a local Hugging Face sequence-classification model directory scores prompt + response;
- ``module:function``: a user function ``fn(prompt, response) -> float`` (label-free: it is never handed the
  gold answer), or ``fn(prompt, response, label) -> float`` when it needs the label;
- ``judge``: an LLM judge over an OpenAI-compatible HTTP endpoint, off unless configured, with a call cap.
Label-free rewards (code, reward model, user function, judge) never read the gold response.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from winnow.data.records import Record
from winnow.errors import ConfigError
from winnow.evaluation.metrics import NUMBER, exact_match, fuzzy_match, includes, numeric_match, token_f1
from winnow.evaluation.sandbox import SandboxLimits, run_python

RewardFn = Callable[[Record, str], float]


@dataclass
class Reward:
    name: str
    fn: RewardFn
    needs_label: bool
    counters: dict[str, int] = field(default_factory=dict)  # e.g. the judge's calls, timeouts and refusals

    def __call__(self, record: Record, response: str) -> float:
        return float(self.fn(record, response))


# The labelled metrics, each a comparison ``fn(prediction, gold)`` of winnow.evaluation.metrics: one table, so a
# new grader is one line here and its name, label need and reward all follow from it.
_AGAINST_GOLD: dict[str, Callable[[str, str], float]] = {
    "exact_match": exact_match, "numeric_match": numeric_match, "token_f1": token_f1,
    "includes": includes, "fuzzy_match": fuzzy_match,
}


def _against_gold(compare: Callable[[str, str], float]) -> RewardFn:
    return lambda record, response: float(compare(response, record.response))


def _code(limits: SandboxLimits) -> RewardFn:
    def fn(record: Record, response: str) -> float:
        if not record.tests:
            raise ConfigError(f"record {record.id!r}: the code reward needs a 'tests' field (asserts to run)")
        code = _strip_fences(response) + "\n\n" + record.tests + "\n"
        return 1.0 if run_python(code, limits=limits).passed else 0.0
    return fn


def _strip_fences(text: str) -> str:
    m = re.search(r"```(?:python)?\n(.*?)```", text, re.S)
    return m.group(1) if m else text


def _user_function(spec: str) -> tuple[RewardFn, bool]:
    """The function and whether it takes the gold answer (a third parameter): a two-parameter function is
    label-free and is never handed the label."""
    import inspect

    module, _, name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"nice.metric: cannot load {spec!r} ({e})") from None
    try:
        n_params = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        n_params = 3
    if n_params not in (2, 3):
        raise ConfigError(f"nice.metric: {spec} must take (prompt, response) or (prompt, response, label)")
    needs_label = n_params == 3

    def call(record: Record, response: str) -> float:
        prompt = "\n".join(c for r, c in record.messages[:-1])
        return float(fn(prompt, response, record.response) if needs_label else fn(prompt, response))
    return call, needs_label


def _reward_model(path: str, device: str) -> RewardFn:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True).to(device).eval()

    @torch.no_grad()
    def fn(record: Record, response: str) -> float:
        prompt = "\n".join(c for r, c in record.messages[:-1])
        enc = tok(prompt, response, return_tensors="pt", truncation=True, max_length=512).to(device)
        logits = model(**enc).logits[0]
        return float(logits[-1] if logits.numel() > 1 else logits[0])
    return fn


@dataclass
class JudgeSettings:
    url: str
    model: str
    api_key: str = field(default="", repr=False)  # never printed: it comes from WINNOW_JUDGE_API_KEY
    max_calls: int = 1000
    timeout_s: float = 30.0


def split_calls(cap: int, n_tasks: int) -> int:
    """Each of ``n_tasks`` reward tasks may call the judge this often, so a run never exceeds ``cap``."""
    if cap < n_tasks:
        raise ConfigError(f"nice.judge_max_calls: {cap} calls cannot cover {n_tasks} reward tasks (queries in chunks, "
                          "times checkpoints); raise the cap or use fewer queries")
    return cap // n_tasks


def _judge(cfg: JudgeSettings, counters: dict[str, int]) -> RewardFn:
    """A rating from 0 to 10, scaled to [0, 1]. A timeout or a refusal (an HTTP error, or a reply without a
    number) scores 0 and is counted, so the report says how much of the signal is missing."""
    import httpx

    counters.update(calls=0, timeouts=0, refusals=0)

    def fn(record: Record, response: str) -> float:
        if counters["calls"] >= cfg.max_calls:
            raise ConfigError(f"nice.judge_max_calls: the judge's cap of {cfg.max_calls} calls is reached")
        counters["calls"] += 1
        prompt = "\n".join(c for r, c in record.messages[:-1])
        body = {"model": cfg.model, "temperature": 0, "messages": [
            {"role": "system", "content": "Rate how well the answer serves the request, from 0 to 10. "
                                          "Reply with the number only."},
            {"role": "user", "content": f"Request:\n{prompt}\n\nAnswer:\n{response}"}]}
        headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
        try:
            r = httpx.post(cfg.url.rstrip("/") + "/chat/completions", json=body, headers=headers,
                           timeout=cfg.timeout_s)
            r.raise_for_status()
            m = NUMBER.search(r.json()["choices"][0]["message"]["content"] or "")
        except httpx.TimeoutException:
            counters["timeouts"] += 1
            return 0.0
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            counters["refusals"] += 1
            return 0.0
        if not m:
            counters["refusals"] += 1
            return 0.0
        return min(10.0, max(0.0, float(m.group().replace(",", "")))) / 10
    return fn


LABELLED_METRICS = tuple(_AGAINST_GOLD)  # compare with the gold response


def needs_label(metric: str) -> bool:
    """Whether ``metric`` scores against a gold response. The others (code runs the query's tests, a reward model
    or judge reads only prompt and response, a two-parameter ``module:fn``) take prompts-only query sets."""
    if metric in LABELLED_METRICS:
        return True
    if ":" in metric:
        return _user_function(metric)[1]
    return False


def make_reward(metric: str, *, limits: SandboxLimits = SandboxLimits(), reward_model: str = "",
                judge: JudgeSettings | None = None, device: str = "cpu") -> Reward:
    """Build the reward a ``--target-metric`` names."""
    if metric in _AGAINST_GOLD:
        return Reward(metric, _against_gold(_AGAINST_GOLD[metric]), True)
    if metric == "code":
        return Reward(metric, _code(limits), False)
    if metric == "reward-model":
        if not reward_model:
            raise ConfigError("nice.reward_model: the reward-model metric needs a model directory")
        return Reward(metric, _reward_model(reward_model, device), False)
    if metric == "judge":
        if judge is None or not judge.url:
            raise ConfigError("nice.judge_url: the judge metric needs an OpenAI-compatible endpoint (off by default)")
        counters: dict[str, int] = {}
        return Reward(metric, _judge(judge, counters), False, counters)
    if ":" in metric:
        fn, needs_label = _user_function(metric)
        return Reward(metric, fn, needs_label)
    raise ConfigError(f"nice.metric: unknown metric {metric!r} (exact_match, numeric_match, token_f1, includes, "
                      "fuzzy_match, code, reward-model, judge, or module:function)")
