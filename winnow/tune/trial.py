"""One tuning trial's fine-tune: LoRA training with a validation check after every epoch.

The check scores the adapter as it stands (the live model, no reload) on the validation split with the
target's metric, reports it to the study and stops training when the pruner says so. A finished fine-tune is
kept under its artifact key with its per-epoch scores, so a configuration the study proposes again (or a
resumed study) replays those scores instead of training again; a pruned one is not kept, because a later
trial with the same values may deserve its remaining epochs.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from winnow.data.records import Record
from winnow.evaluation.evaluate import evaluate, metric_reward
from winnow.steps import STEPS
from winnow.fingerprint import ModelRef
from winnow.results import Evaluation
from winnow.models.loading import load_tokenizer, resolve_device
from winnow.settings import EvalSettings, LoraSettings, ModelSettings, TrainSettings
from winnow.training.runs import result_settings, train_on
from winnow.training.trainer import LOG_FILE

HISTORY = "val_history.json"


def checked_key(subset_digest: str, base: ModelRef | str, model: ModelSettings, train: TrainSettings, lora: LoraSettings,
                val_digest: str, eval_settings: EvalSettings, score: str) -> str:
    """A checked fine-tune's key: a fine-tune's (subset content, model, settings) plus what checks it (the
    validation split's content and how it is scored), and this module's code."""
    return STEPS["checked_finetune"].key(inputs={"subset": subset_digest, "val": val_digest}, models=(base,),
                        settings={"model": result_settings(model), "train": train, "lora": lora,
                                  "eval": eval_settings, "score": score})


def value_of(metrics: Evaluation, score: str) -> float:
    """What the study maximises: the metric, or minus the response loss."""
    return float(metrics.score) if score == "metric" else -float(metrics.response_loss)


def train_with_checks(records: list[Record], val: list[Record], *, model_path: str, model: ModelSettings,
                      train: TrainSettings, lora: LoraSettings, eval_settings: EvalSettings, score: str,
                      out_dir: str | Path, report: Callable[[int, float], bool]) -> dict[str, Any]:
    """Fine-tune on ``records`` with ``report(epoch, value)`` after each epoch (True = pruned). Returns the
    per-epoch history, whether it was pruned, the optimizer steps this call ran (0 when replayed from a kept
    fine-tune) and the last adapter."""
    out_dir = Path(out_dir)
    kept = out_dir / HISTORY
    if kept.is_file() and (out_dir / LOG_FILE).is_file():
        saved = json.loads(kept.read_text())
        history = []
        for h in saved["history"]:
            history.append(h)
            if report(h["epoch"], h["value"]) and h["epoch"] < train.epochs:
                return {"history": history, "pruned": True, "steps": 0, "adapter": h["adapter"], "reused": True}
        return {**saved, "steps": 0, "reused": True}
    tok = load_tokenizer(model_path, trust_remote_code=model.trust_remote_code)  # for the checks' generation
    device = str(resolve_device(model.device))
    reward = metric_reward(eval_settings, device=device)
    history: list[dict[str, Any]] = []

    def on_epoch(epoch: int, step: int, net: Any) -> bool:
        m = evaluate(net, tok, val, eval_settings, max_length=model.max_length, reward=reward, progress=False,
                     device=device)
        value = value_of(m, score)
        history.append({"epoch": epoch, "step": step, "value": value, "score": m.score,
                        "response_loss": m.response_loss, "adapter": str(out_dir / f"epoch-{epoch}" / "adapter")})
        return report(epoch, value)

    summary = train_on(records, model_path=model_path, model=model, train=train, lora=lora, out_dir=out_dir,
                       save_checkpoints=True, progress=False, on_epoch=on_epoch)
    pruned = bool(summary["stopped_at_epoch"])
    result = {"history": history, "pruned": pruned, "steps": len(summary["steps"]),
              "adapter": history[-1]["adapter"], "reused": False}
    if not pruned:
        tmp = kept.with_suffix(".tmp")
        tmp.write_text(json.dumps({"history": history, "pruned": False, "adapter": result["adapter"]}, indent=1))
        os.replace(tmp, kept)
    return result
