"""Record layouts people have, turned into the one the data contract checks (``messages`` or prompt/response).

Detected per record from its keys (a user's column map applied first), so a file mixing chats and pairs loads;
``format`` forces one layout for a whole file. Each normaliser names the *original* field when it refuses a
record, so the quarantine line points at what is in the user's file, not at Winnow's name for it.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from winnow.data.records import RecordError, describe
from winnow.errors import ConfigError

LAYOUTS = ("messages", "prompt_response", "alpaca", "sharegpt", "qa", "text")
# Fields every layout carries through unchanged (optional in all of them).
PASSTHROUGH = ("id", "source", "task", "tests", "choices", "answer", "metric")
# ShareGPT speakers -> roles (the names seen in ShareGPT, Vicuna, OpenHermes and SlimOrca exports).
SPEAKERS = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
            "bard": "assistant", "bing": "assistant", "model": "assistant", "system": "system"}
# Names a column map may target: the canonical fields and the fields of each layout.
MAP_TARGETS = ("prompt", "response", "messages", *PASSTHROUGH, "system", "instruction", "input", "output",
               "conversations", "question", "completion", "text")

def parse_map(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """``prompt=question,response=answer`` (the CLI) or a mapping (YAML) -> {winnow field: user column}."""
    if not text:
        return {}
    where = "" if isinstance(text, Mapping) else "--map: "  # YAML errors are prefixed with their key already
    pairs = dict(text) if isinstance(text, Mapping) else dict(
        p.split("=", 1) if "=" in p else (p, "") for p in (s.strip() for s in text.split(",")) if p)
    for target, column in pairs.items():
        if target not in MAP_TARGETS:
            raise ConfigError(f"{where}unknown field {target!r} (fields: {', '.join(MAP_TARGETS)})")
        if not isinstance(column, str) or not column:
            raise ConfigError(f"{where}{target}= needs a column name, as in {target}=my_column")
    return pairs


def apply_map(obj: dict[str, Any], column_map: Mapping[str, str]) -> dict[str, Any]:
    """Rename the user's columns to Winnow's fields; a column the record lacks leaves the field as it is."""
    if not column_map:
        return obj
    out = {k: v for k, v in obj.items() if k not in column_map.values()}
    for target, column in column_map.items():
        if column in obj:
            out[target] = obj[column]
    return out


def detect(obj: Mapping[str, Any]) -> str | None:
    """The layout a record's keys say it is in, or None."""
    msgs = obj.get("messages")
    if isinstance(msgs, list):
        return "sharegpt" if msgs and isinstance(msgs[0], dict) and "from" in msgs[0] else "messages"
    if obj.get("conversations") is not None:
        return "sharegpt"
    if obj.get("instruction") is not None and obj.get("output") is not None:
        return "alpaca"
    if obj.get("prompt") is not None:
        return "prompt_response"
    if obj.get("question") is not None:
        return "qa"
    if obj.get("text") is not None:
        return "text"
    if msgs is not None:
        return "messages"  # present but not a list: the contract says what is wrong with it
    return None


def normalise(obj: Any, layout: str = "auto", column_map: Mapping[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """One decoded record -> (canonical dict for ``parse_record``, its layout); RecordError when it fits none."""
    if not isinstance(obj, dict):
        raise RecordError("<record>", f"must be a JSON object, got {type(obj).__name__}")
    obj = apply_map(obj, column_map or {})
    found = detect(obj) if layout == "auto" else layout
    if found is None:
        keys = ", ".join(describe(k) for k in list(obj)[:8]) or "none"
        raise RecordError("<record>", "no known layout (messages, conversations, instruction/output, prompt/response, "
                                      "prompt/completion, question/answer or text; other column names: `--map prompt=COL` "
                                      "on ingest, `--set data.map.prompt=COL` (pool) or data.target.map (query, "
                                      f"test) elsewhere); its keys: {keys}")
    rest = {k: obj[k] for k in PASSTHROUGH if k in obj}
    return {**rest, **_NORMALISERS[found](obj)}, found


def _string(obj: Mapping[str, Any], key: str, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise RecordError(key, "missing")
        return None
    if not isinstance(value, str):
        raise RecordError(key, f"must be a string, got {type(value).__name__}")
    return value


def _content(content: Any, where: str) -> Any:
    """OpenAI-style content parts (``[{"type": "text", "text": ...}]``) joined into one string."""
    if not isinstance(content, list):
        return content
    texts = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text"):
            if not isinstance(part.get("text"), str):
                raise RecordError(f"{where}[{j}].text", "must be a string")
            texts.append(part["text"])
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise RecordError(f"{where}[{j}]", f"a content part of type {describe(kind)} (only text is trained on)")
    return "\n".join(texts)


def _messages(obj: Mapping[str, Any]) -> dict[str, Any]:
    raw = obj.get("messages")
    if not isinstance(raw, list):
        return {"messages": raw}
    return {"messages": [{**m, "content": _content(m.get("content"), f"messages[{i}].content")}
                         if isinstance(m, dict) else m for i, m in enumerate(raw)]}


def _prompt_response(obj: Mapping[str, Any]) -> dict[str, Any]:
    """prompt + response (or TRL's ``completion``); TRL's conversational form, where both are lists of
    messages, becomes the chat they make together."""
    if isinstance(obj.get("prompt"), list):
        completion = obj.get("completion", obj.get("response"))
        if isinstance(completion, str):
            completion = [{"role": "assistant", "content": completion}]
        if completion is not None and not isinstance(completion, list):
            raise RecordError("completion", f"must be a string or a list of messages, got {type(completion).__name__}")
        return _messages({"messages": [*obj["prompt"], *(completion or [])]})
    out = {"prompt": obj.get("prompt")}
    response = obj["response"] if obj.get("response") is not None else obj.get("completion")
    if response is not None:
        out["response"] = response
    system = _string(obj, "system", required=False)
    if system and isinstance(out["prompt"], str):
        return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": out["prompt"]},
                             *([{"role": "assistant", "content": response}] if response is not None else [])]}
    return out


def _alpaca(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Alpaca's prompt is the instruction, then a blank line and the input when there is one."""
    instruction = _string(obj, "instruction")
    extra = _string(obj, "input", required=False)
    prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    return _prompt_response({"prompt": prompt, "response": _string(obj, "output", required=False),
                             "system": obj.get("system")})


def _sharegpt(obj: Mapping[str, Any]) -> dict[str, Any]:
    key = "conversations" if obj.get("conversations") is not None else "messages"
    raw = obj.get(key)
    if not isinstance(raw, list) or not raw:
        raise RecordError(key, "must be a non-empty list of {from, value}")
    turns = []
    for i, turn in enumerate(raw):
        if not isinstance(turn, dict):
            raise RecordError(f"{key}[{i}]", "must be an object with from and value")
        speaker = turn.get("from")
        role = SPEAKERS.get(speaker.lower()) if isinstance(speaker, str) else None
        if role is None:
            raise RecordError(f"{key}[{i}].from", f"unknown speaker {describe(speaker)} "
                                                  f"(expected one of {sorted(SPEAKERS)})")
        turns.append({"role": role, "content": _content(turn.get("value"), f"{key}[{i}].value")})
    system = _string(obj, "system", required=False)
    return {"messages": ([{"role": "system", "content": system}] if system else []) + turns}


def _qa(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``question`` + ``answer`` (GSM8K, TriviaQA) or, with ``choices``, the answer as index/letter/text (MMLU)."""
    out: dict[str, Any] = {"prompt": obj.get("question")}
    if obj.get("choices") is None:
        out["response"] = _string(obj, "answer", required=False)
    return out


def _text(obj: Mapping[str, Any]) -> dict[str, Any]:
    """TRL's language-modelling ``{"text": ...}``: the whole text is what is trained on, so it is the response
    to an empty prompt (the loss then covers every token of it)."""
    return {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": _string(obj, "text")}],
            "open_prompt": True}


_NORMALISERS = {"messages": _messages, "prompt_response": _prompt_response, "alpaca": _alpaca,
                "sharegpt": _sharegpt, "qa": _qa, "text": _text}
