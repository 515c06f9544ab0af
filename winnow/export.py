"""Hand a run's results on: its subset as a data set other trainers load, its adapter as a PEFT folder a
user's own stack loads, each with a card that says what it is and where it came from.

A subset leaves in the layouts people train from (``messages`` for chat trainers, TRL's conversational
``prompt``/``completion``, Alpaca, ShareGPT) and as JSONL, Parquet or a ``datasets`` folder. The adapter's
``adapter_config.json`` names the base model by its hub id when the run used one (the default model's
converted local copy is named by its hub id too), never by a path on the machine that trained it, and its
model card adds the base model's content fingerprint, so a mismatch of weights is visible.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterable

from winnow.errors import ConfigError

LAYOUTS = ("messages", "prompt_completion", "alpaca", "sharegpt")
FORMATS = ("jsonl", "parquet", "hf")
DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what Winnow's built-in default model is
_ROLES = {"user": "human", "assistant": "gpt", "system": "system"}


def _turns(rec: dict[str, Any]) -> tuple[str, list[dict[str, str]], str]:
    """(system prompt, the turns before the response, the response)."""
    msgs = list(rec["messages"])
    system = msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else ""
    body = msgs[1:] if system else msgs
    return system, body[:-1], body[-1]["content"] if body else ""


def to_layout(rec: dict[str, Any], layout: str) -> dict[str, Any]:
    """One canonical record (``Record.to_json``) in ``layout``; id, source and task stay beside it, so an
    exported row can be traced back to the pool."""
    keep = {k: rec[k] for k in ("id", "source", "task") if k in rec}
    if layout == "messages":
        return {"messages": rec["messages"], **keep}
    system, before, response = _turns(rec)
    if layout == "prompt_completion":  # TRL's conversational prompt-completion layout
        prompt = ([{"role": "system", "content": system}] if system else []) + before
        return {"prompt": prompt, "completion": [{"role": "assistant", "content": response}], **keep}
    if layout == "alpaca":
        if len(before) > 1:  # Alpaca holds one instruction: earlier turns go into its input, in order
            history = "\n\n".join(f"{m['role']}: {m['content']}" for m in before[:-1])
            return {"instruction": before[-1]["content"], "input": history, "output": response, "system": system, **keep}
        return {"instruction": before[0]["content"] if before else "", "input": "", "output": response,
                "system": system, **keep}
    if layout == "sharegpt":
        conv = [{"from": _ROLES[m["role"]], "value": m["content"]} for m in rec["messages"]]
        return {"conversations": conv, **keep}
    raise ConfigError(f"--layout: unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")


def write_dataset(records: Iterable[dict[str, Any]], out: Path, fmt: str, layout: str, card: str) -> Path:
    """Write the records in ``layout`` as ``fmt`` under ``out`` with a dataset card (README.md); returns the
    data file or, for ``hf``, the ``save_to_disk`` folder."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    rows = [to_layout(r, layout) for r in records]
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text(card)
    if fmt == "jsonl":
        from winnow.data.loaders import write_jsonl

        write_jsonl(out / "data.jsonl", rows)
        return out / "data.jsonl"
    import datasets

    ds = datasets.Dataset.from_list(rows)
    if fmt == "parquet":
        ds.to_parquet(str(out / "data.parquet"))
        return out / "data.parquet"
    ds.save_to_disk(str(out / "dataset"))
    return out / "dataset"


def dataset_card(meta: dict[str, Any], layout: str, n: int) -> str:
    """What the data is and where it came from: target, method, budget, verdict, provenance, decontamination."""
    lines = [f"# {meta.get('name', 'winnow subset')}", "",
             f"{n} examples chosen by Winnow ({meta.get('selector', '?')}) for the target "
             f"`{meta.get('target', '?')}`, layout `{layout}`.", "",
             "| | |", "|---|---|",
             *[f"| {k} | {v} |" for k, v in meta.items() if k not in ("name", "sources") and v not in (None, "")]]
    if meta.get("sources"):
        lines += ["", "Examples per source:", "",
                  *[f"- {s}: {c}" for s, c in sorted(meta["sources"].items(), key=lambda kv: -kv[1])]]
    return "\n".join(lines) + "\n"


def base_model_id(model_name: str) -> str:
    """How an exported adapter names its base model: the hub id or the folder the user gave."""
    from winnow.models.loading import DEFAULT_MODEL

    return DEFAULT_HUB_ID if model_name in ("", DEFAULT_MODEL) else model_name


def model_card(base_id: str, fingerprint: str, meta: dict[str, Any], merged: bool) -> str:
    what = "a merged model (LoRA folded into the base weights)" if merged else "a LoRA adapter (PEFT)"
    return "\n".join([
        "---", f"base_model: {base_id}", "library_name: " + ("transformers" if merged else "peft"),
        "tags: [winnow, lora]", "---", "", f"# {meta.get('name', 'winnow adapter')}", "",
        f"{what} for `{base_id}` (base weights' content fingerprint `{fingerprint}`), fine-tuned by Winnow on "
        f"{meta.get('size', '?')} examples chosen by {meta.get('selector', '?')} for the target "
        f"`{meta.get('target', '?')}`.", "",
        *[f"- {k}: {v}" for k, v in meta.items() if k not in ("name", "sources") and v not in (None, "")], ""])


def export_adapter(adapter_dir: Path, out: Path, base_path: str, base_id: str, card: str, merge: bool = False) -> Path:
    """Save the adapter through PEFT (``save_pretrained``) with ``base_model_name_or_path = base_id``, or with
    ``merge`` the merged model and its tokenizer; a model card (README.md) beside it."""
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ConfigError(f"{adapter_dir}: no adapter_config.json (was the run's adapter deleted?)")
    from peft import PeftModel

    from winnow.models.loading import load_model, load_tokenizer

    model = PeftModel.from_pretrained(load_model(base_path, device="cpu"), str(adapter_dir))
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    if merge:
        merged = model.merge_and_unload()
        merged.config.name_or_path = base_id
        merged.save_pretrained(tmp, safe_serialization=True)
        load_tokenizer(base_path).save_pretrained(tmp)
    else:
        model.peft_config["default"].base_model_name_or_path = base_id
        model.save_pretrained(tmp)
    (tmp / "README.md").write_text(card)  # PEFT writes its own card; ours says what the data was
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def run_outputs(run: Any, pool: str, test: str) -> dict[str, Any]:
    """What ``winnow export`` reads back from a run folder's metrics.json: per arm its subset file, adapter folder,
    selector, size and how many candidates the guard removed, and the pool table the subset was drawn from."""
    arms = {}
    for name, sub in run.subsets.items():
        arms[name] = {"subset": sub.path, "adapter": run.adapters.get(name, ""), "selector": sub.selector,
                      "size": sub.size, "pool_size": sub.pool_size, "sources": sub.sources, "digest": sub.digest,
                      "decontamination_removed": sub.excluded}
    return {"arms": arms, "pool": pool, "pool_table": run.data["pool"].table if "pool" in run.data else "",
            "target": Path(test).name}
