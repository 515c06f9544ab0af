"""The data contract: one small record type and its validation.

A record is a chat (``messages``) or a ``prompt`` + ``response`` pair, with ``source`` and ``task``; ``id`` is
optional and defaults to a content hash. Validation never drops anything silently: each rejected record
becomes a ``Quarantined`` entry naming file, line and field, so counts in = used + quarantined always holds.
"""
from __future__ import annotations

import hashlib
import json
import re
import reprlib
from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant")

_short = reprlib.Repr()  # keyword arguments arrive in Python 3.12
_short.maxlevel, _short.maxstring, _short.maxother, _short.maxlist, _short.maxdict = 2, 40, 40, 4, 4

# The metric names ``eval.metric`` and a test record's own ``metric`` may give (winnow.evaluation.evaluate).
METRIC_PATTERN = r"^(exact_match|numeric_match|token_f1|includes|fuzzy_match|mc_accuracy|code|reward-model|judge|pass@[1-9][0-9]*|[A-Za-z_][\w.]*:\w+)$"


def describe(value: object) -> str:
    """A bounded repr for error messages: a 10 MB or 10,000-deep value must not become the message."""
    return _short.repr(value)


def _unicode(value: str, field: str) -> str:
    """Reject lone surrogates (``"\\ud800"`` in JSON, or invalid UTF-8 in an array): they decode to Python
    strings but cannot be written to the store, hashed or tokenised."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RecordError(field, f"invalid Unicode at character {e.start} (a lone surrogate or invalid UTF-8)") from None
    return value


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    messages: tuple[tuple[str, str], ...]  # ((role, content), ...); the last turn is the assistant's response
    source: str
    task: str
    tests: str | None = None  # optional code run after a response by the code reward (never in-process)
    choices: tuple[str, ...] | None = None  # multiple choice: the response is one of these (mc_accuracy)
    metric: str = ""  # a test record's own metric (e.g. mc_accuracy in a mixed suite); "" = eval.metric

    @property
    def response(self) -> str:
        return self.messages[-1][1]

    @property
    def labelled(self) -> bool:
        """Whether the record has a gold response (a prompts-only query of a label-free metric has none)."""
        return bool(self.response.strip())

    def as_chat(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "messages": self.as_chat(), "source": self.source, "task": self.task}
        if self.tests:
            out["tests"] = self.tests
        if self.choices:
            out["choices"] = list(self.choices)
        if self.metric:
            out["metric"] = self.metric
        return out


@dataclass(frozen=True, slots=True)
class Quarantined:
    path: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: field {self.field!r}: {self.reason}"


@dataclass
class LoadResult:
    """Records that passed, and everything that did not, with the counts that must add up."""

    path: str
    records: list[Record] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    n_in: int = 0
    lines: list[int] = field(default_factory=list)  # source line (or row) of each accepted record
    # How the file was read: compression, encoding, container (jsonl, array, document, parquet, datasets),
    # the layout of each accepted record, and how many records took a default source or task.
    read_as: dict[str, str] = field(default_factory=dict)
    layouts: dict[str, int] = field(default_factory=dict)
    defaulted: dict[str, int] = field(default_factory=lambda: {"source": 0, "task": 0})

    def check_counts(self) -> None:
        assert self.n_in == len(self.records) + len(self.quarantined), "record accounting broken"

    def reasons(self) -> dict[str, int]:
        """Quarantine counts per reason kind (the reason's text before any ':' or detail), most common first."""
        counts: dict[str, int] = {}
        for q in self.quarantined:
            text = re.sub(r"\d[\d,]*", "N", re.sub(r"'[^']*'", "'…'", q.reason.split(":")[0].split(" (")[0]))
            kind = re.sub(r"\[\d+\]", "[N]", q.field) + ": " + text
            counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def summary(self) -> dict[str, Any]:
        return {"path": self.path, "in": self.n_in, "used": len(self.records),
                "quarantined": len(self.quarantined), "read_as": self.read_as, "layouts": self.layouts,
                "defaulted": self.defaulted, "reasons": self.reasons()}


def content_id(messages: tuple[tuple[str, str], ...]) -> str:
    """Content hash used as id when a record has none (same chat -> same id, on any machine)."""
    return hashlib.sha256(json.dumps(messages, ensure_ascii=False).encode()).hexdigest()[:16]


class RecordError(ValueError):
    """One field of one record is wrong; becomes a quarantine entry."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


def _text(obj: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            raise RecordError(key, "missing")
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise RecordError(key, f"must be a string, got {type(value).__name__}")
    return _unicode(value, key)


def parse_record(obj: Any, *, default_source: str = "", labelled: bool = True) -> Record:
    """Turn one decoded JSON object into a ``Record`` or raise ``RecordError`` naming the field.

    ``labelled=False`` accepts a prompt without a response (no ``response`` field, or a chat that ends on the
    user's turn): the queries of a label-free target metric. A record without ``source`` takes
    ``default_source`` (the loader passes its file's stem), and one without ``task`` its source. Such a record ends in an empty assistant turn,
    so ``labelled`` is False and nothing can train on or score against a label it does not have."""
    if not isinstance(obj, dict):
        raise RecordError("<record>", f"must be a JSON object, got {type(obj).__name__}")
    if "messages" in obj and obj["messages"] is not None:
        raw = obj["messages"]
        if not isinstance(raw, list) or not raw:
            raise RecordError("messages", "must be a non-empty list of {role, content}")
        turns = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict):
                raise RecordError(f"messages[{i}]", "must be an object with role and content")
            role, content = m.get("role"), m.get("content")
            if not isinstance(role, str) or role not in ROLES:
                raise RecordError(f"messages[{i}].role", f"unknown role {describe(role)} (expected one of {ROLES})")
            if not isinstance(content, str):
                raise RecordError(f"messages[{i}].content", f"must be a string, got {type(content).__name__}")
            turns.append((role, _unicode(content, f"messages[{i}].content")))
        if turns[-1][0] != "assistant":
            if labelled:
                raise RecordError("messages", "last turn must be the assistant's response")
            turns.append(("assistant", ""))
        if labelled and not turns[-1][1].strip():
            raise RecordError(f"messages[{len(turns) - 1}].content", "empty response")
        if not any(c.strip() for _, c in turns[:-1]) and not obj.get("open_prompt"):  # a system turn is a prompt
            raise RecordError("messages", "empty prompt (no non-empty turn before the response)")
    else:
        choices = _choices(obj)
        answered = choices is not None and obj.get("answer") is not None and obj.get("response") is None
        prompt = _text(obj, "prompt")
        response = _choice_answer(obj["answer"], choices) if answered else _text(obj, "response", required=labelled)
        assert prompt is not None
        response = response or ""
        if not prompt.strip():
            raise RecordError("prompt", "empty prompt")
        if labelled and not response.strip():
            raise RecordError("response", "empty response")
        turns = [("user", prompt), ("assistant", response)]
    messages = tuple(turns)
    source = _text(obj, "source", required=not default_source) or default_source
    task = _text(obj, "task", required=not source) or source  # a task defaults to its source
    rid = obj.get("id")
    if rid is None:
        rid = content_id(messages)
    elif isinstance(rid, (int, str)) and not isinstance(rid, bool) and str(rid).strip():
        rid = _unicode(str(rid), "id")
    else:
        raise RecordError("id", f"must be a non-empty string or integer, got {describe(rid)}")
    tests = _text(obj, "tests", required=False)
    choices = _choices(obj)
    if choices is not None and messages[-1][1] and messages[-1][1] not in choices:
        raise RecordError("choices", "the response is not one of the choices")
    metric = _text(obj, "metric", required=False) or ""
    if metric and not re.match(METRIC_PATTERN, metric):
        raise RecordError("metric", f"unknown metric {describe(metric)} (one of exact_match, numeric_match, token_f1, "
                                    "includes, fuzzy_match, mc_accuracy, pass@k, code, reward-model, judge, module:function)")
    if metric == "mc_accuracy" and choices is None:
        raise RecordError("choices", "metric mc_accuracy needs two or more choices")
    return Record(id=rid, messages=messages, source=source, task=task, tests=tests, choices=choices, metric=metric)


def _choices(obj: dict[str, Any]) -> tuple[str, ...] | None:
    """A multiple-choice record's options: two or more distinct strings."""
    raw = obj.get("choices")
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) < 2 or not all(isinstance(c, str) and c.strip() for c in raw):
        raise RecordError("choices", "must be a list of two or more non-empty strings")
    for c in raw:
        _unicode(c, "choices")
    if len(set(raw)) != len(raw):
        raise RecordError("choices", "has a repeated choice")
    return tuple(raw)


def _choice_answer(answer: Any, choices: tuple[str, ...]) -> str:
    """The gold choice named by ``answer``: an index (MMLU's 0..3), a letter (A, B, ...) or the choice's text."""
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices):
        return choices[answer]
    if isinstance(answer, str):
        if answer in choices:
            return answer
        letter = answer.strip().strip("()").upper()
        if len(letter) == 1 and 0 <= ord(letter) - ord("A") < len(choices):
            return choices[ord(letter) - ord("A")]
    raise RecordError("answer", f"must be an index, a letter or the text of one of the {len(choices)} choices, "
                                f"got {describe(answer)}")


def dedupe(result: LoadResult) -> LoadResult:
    """Keep the first record of each id; later copies are quarantined with the reason.

    An exact repeat and a conflicting record (same id, other content) both end in quarantine, with
    different reasons, so the report tells a harmless duplicate from a data bug.
    """
    seen: dict[str, tuple[Record, int]] = {}
    kept, kept_lines = [], []
    for rec, line in zip(result.records, result.lines):
        if rec.id in seen:
            first, first_line = seen[rec.id]
            reason = (f"duplicate of line {first_line}" if first.messages == rec.messages
                      else f"id {rec.id!r} already used at line {first_line} with different content")
            result.quarantined.append(Quarantined(result.path, line, "id", reason))
            continue
        seen[rec.id] = (rec, line)
        kept.append(rec)
        kept_lines.append(line)
    result.records, result.lines = kept, kept_lines
    return result
