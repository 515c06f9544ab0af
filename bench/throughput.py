"""Fine-tune and evaluation throughput: length-grouped batches against random batches (LoRA training), and
prompts batched by length against batches in input order (greedy generation, response loss), on a real
mixed-length pool. Runs alternate (A, B, A, B) so both see the machine's load alike; one JSON with the ratios.

    python bench/throughput.py --pool data/demo/pool.jsonl --examples 96
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from winnow.data.formatting import encode  # noqa: E402
from winnow.data.loaders import load_records  # noqa: E402
from winnow.evaluation.evaluate import response_losses  # noqa: E402
from winnow.evaluation.generation import generate  # noqa: E402
from winnow.models.loading import load_model, load_tokenizer, resolve_model_path, set_threads  # noqa: E402
from winnow.plan import padded_tokens  # noqa: E402
from winnow.settings import LoraSettings, TrainSettings  # noqa: E402
from winnow.training.trainer import train_lora  # noqa: E402


def clock(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool", default=str(ROOT / "data" / "demo" / "pool.jsonl"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--examples", type=int, default=96, help="pool examples trained on and generated for")
    ap.add_argument("--max-length", type=int, default=192)
    ap.add_argument("--batch-size", type=int, default=4, help="training batch (the demo's)")
    ap.add_argument("--eval-batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "throughput.json"))
    args = ap.parse_args()
    set_threads(args.threads)
    path = resolve_model_path(args.model, ROOT / ".winnow" / "models")
    tok = load_tokenizer(path)
    records = random.Random(0).sample(load_records(args.pool).records, args.examples)
    enc = [encode(tok, r, args.max_length) for r in records]
    lengths = [len(e.input_ids) for e in enc]
    lora = LoraSettings()
    times: dict[str, list[float]] = {k: [] for k in ("train_random", "train_grouped", "gen_input_order",
                                                     "gen_by_length", "loss_input_order", "loss_by_length")}
    model = load_model(path)
    b = args.eval_batch_size
    for _ in range(args.repeats):
        for grouped in (False, True):
            train = TrainSettings(epochs=1, lr=1e-4, batch_size=args.batch_size, group_by_length=grouped)
            with tempfile.TemporaryDirectory() as tmp:
                times["train_grouped" if grouped else "train_random"].append(clock(lambda: train_lora(
                    load_model(path), enc, pad_id=tok.pad_token_id, train=train, lora=lora, out_dir=tmp,
                    save_checkpoints=False, progress=False)))
        # Input order: each batch_size chunk generated on its own, as batches were formed before sorting.
        times["gen_input_order"].append(clock(lambda: [generate(
            model, tok, records[s:s + b], max_new_tokens=args.max_new_tokens, batch_size=b,
            max_length=args.max_length, progress=False) for s in range(0, len(records), b)]))
        times["gen_by_length"].append(clock(lambda: generate(
            model, tok, records, max_new_tokens=args.max_new_tokens, batch_size=b, max_length=args.max_length,
            progress=False)))
        times["loss_input_order"].append(clock(lambda: [response_losses(
            model, tok, records[s:s + b], batch_size=b, max_length=args.max_length) for s in range(0, len(records), b)]))
        times["loss_by_length"].append(clock(lambda: response_losses(model, tok, records, batch_size=b,
                                                                     max_length=args.max_length)))
    best = {k: min(v) for k, v in times.items()}
    n = len(records)
    res = {"settings": vars(args), "device": "cuda" if torch.cuda.is_available() else "cpu",
           "tokens": {"mean": float(np.mean(lengths)), "p95": float(np.percentile(lengths, 95)), "max": max(lengths)},
           "padding_share": {"random": 1 - sum(lengths) / padded_tokens(lengths, args.batch_size, grouped=False),
                             "grouped": 1 - sum(lengths) / padded_tokens(lengths, args.batch_size, grouped=True)},
           "examples_per_s": {k: n / v for k, v in best.items()}, "seconds": times,
           "ratios": {"train_grouped_over_random": best["train_random"] / best["train_grouped"],
                      "generate_by_length_over_input_order": best["gen_input_order"] / best["gen_by_length"],
                      "loss_by_length_over_input_order": best["loss_input_order"] / best["loss_by_length"]}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps({k: res[k] for k in ("tokens", "padding_share", "examples_per_s", "ratios")}, indent=1))


if __name__ == "__main__":
    main()
