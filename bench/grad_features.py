"""Benchmark of the gradient feature engine: ratios measured in one run on the same examples and model.

Prints and writes JSON: engine examples/s (batched per-example gradients + projection), the batch-size-1
loop (one backward per example + the same projection, what LESS's reference does), a plain batched
forward+backward with no per-example work (the floor), the projection's share of engine time, the max
relative error of engine gradients against the loop, and the peak memory of each phase.

    python bench/grad_features.py                 # real SmolLM2-135M, 48 demo-like examples, CPU or CUDA
    python bench/grad_features.py --model tiny    # seconds, for a smoke run
    python bench/grad_features.py --model llama-1b --random-init --bf16 --max-length 512 --fill   # bench/gpu.sh
``--random-init`` builds the model from its config alone (speed and memory do not depend on the weights' values,
so a GPU machine needs only config.json and the tokenizer); ``llama-1b`` is a 1.1B Llama-style shape (TinyLlama's)
built in code; ``--fill`` repeats each prompt to ``--max-length`` tokens. On CUDA the JSON also holds model FLOP
utilisation: 4·N·tokens (forward 2N, backward to the activations 2N; the frozen base needs no weight gradients)
over the device's dense bf16 peak.
Targets on the 2-core CPU: engine >= 1.3x loop, engine cost <= 1.3x plain forward+backward, projection <= 20 %.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from winnow.data.formatting import collate, encode, per_example_loss  # noqa: E402
from winnow.data.loaders import load_records  # noqa: E402
from winnow.features.gradients import gradient_features  # noqa: E402
from winnow.features.per_example import lora_modules, loop_grads, per_example_grads  # noqa: E402
from winnow.features.projection import Projector  # noqa: E402
from winnow.models.loading import load_model, load_tokenizer, resolve_device, resolve_model_path  # noqa: E402
from winnow.models.lora import attach_lora  # noqa: E402
from winnow.settings import LoraSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def peak_memory_mb(device: torch.device) -> float:
    """Peak of this phase's process: max RSS on CPU (model included), max allocated on CUDA."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# Dense bf16 tensor-core peaks (vendor figures, TFLOP/s) for model FLOP utilisation; other devices report none.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}
LLAMA_1B = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                num_key_value_heads=4, max_position_embeddings=2048, rms_norm_eps=1e-5, tie_word_embeddings=False)


def examples(tok, n: int, max_length: int, fill: bool = False):
    from dataclasses import replace

    demo = ROOT / "data" / "demo" / "pool.jsonl"
    src = demo if demo.exists() else ROOT / "tests" / "data" / "good" / "pool.jsonl"
    recs = load_records(src).records
    recs = (recs * (n // len(recs) + 1))[:n]
    if fill:  # every sequence max_length tokens: the prompt repeated (the truncation policy cuts it from the left)
        recs = [replace(r, messages=tuple((role, (text + "\n") * (4 * max_length // max(len(text), 1) + 1))
                                          if role == "user" else (role, text) for role, text in r.messages))
                for r in recs]
    return [encode(tok, r, max_length) for r in recs], str(src.relative_to(ROOT))


def build_model(args: argparse.Namespace, device: torch.device):
    """The model under test and its path: a loaded checkpoint, or (``--random-init``, ``llama-1b``) one built
    from a config with random weights, in fp32 (``--bf16`` autocasts the compute, as the feature step does)."""
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig

    if args.model == "tiny":
        from tests.fixtures.tiny import make_tiny_model

        path = str(make_tiny_model(Path(tempfile.gettempdir()) / "winnow-bench-tiny"))
    elif args.model == "llama-1b":
        path = resolve_model_path(args.tokenizer or "default", ROOT / ".winnow" / "models")  # the tokenizer's
    else:
        path = resolve_model_path(args.model, ROOT / ".winnow" / "models")
    tok = load_tokenizer(resolve_model_path(args.tokenizer, ROOT / ".winnow" / "models") if args.tokenizer else path)
    if args.model == "llama-1b" or args.random_init:
        cfg = (LlamaConfig(vocab_size=len(tok), **LLAMA_1B) if args.model == "llama-1b"
               else AutoConfig.from_pretrained(path))
        torch.manual_seed(0)
        with torch.device(device):  # initialised where it runs: a 1B model's init on the host takes minutes
            model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    else:
        model = load_model(path, device=str(device))
    return tok, model


def timed(fn, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default", help="'default' (SmolLM2-135M), 'tiny', or a model dir")
    ap.add_argument("--n", type=int, default=48, help="examples per phase")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--proj-dim", type=int, default=8192)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for forward and backward (fp32 weights)")
    ap.add_argument("--random-init", action="store_true", help="the model's config with random weights")
    ap.add_argument("--tokenizer", default="", help="tokenizer folder (default: the model's; llama-1b: SmolLM2's)")
    ap.add_argument("--fill", action="store_true", help="every example --max-length tokens long")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "grad_features.json"))
    ap.add_argument("--phase", default=None, help=argparse.SUPPRESS)  # internal: run one phase in a child
    return ap.parse_args(argv)


def setup(args: argparse.Namespace):
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    tok, base = build_model(args, device)
    n_base = sum(p.numel() for p in base.parameters())
    model = attach_lora(base, LoraSettings(r=args.rank, alpha=2 * args.rank, dropout=0.0), seed=0).eval()
    torch.manual_seed(0)
    for n, p in model.named_parameters():  # a warmed-up adapter: B is no longer zero
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.01)
    mods = lora_modules(model)
    enc, data_src = examples(tok, args.n, args.max_length, args.fill)
    order = sorted(range(len(enc)), key=lambda i: len(enc[i].input_ids))
    batches = [collate([enc[i] for i in order[s:s + args.batch_size]], tok.pad_token_id)
               for s in range(0, len(order), args.batch_size)]
    batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
    return device, tok, model, mods, enc, data_src, batches, n_base


def run_phase(args: argparse.Namespace) -> dict:
    """One phase in this (fresh) process: warm up once, then time it and record its peak memory."""
    device, tok, model, mods, enc, data_src, batches, n_base = setup(args)
    proj = Projector("sjlt", args.proj_dim, seed=0)
    bf16 = {"device_type": device.type, "dtype": torch.bfloat16, "enabled": args.bf16}

    def engine(timings=None, bf16_on=args.bf16, subset=None):
        return gradient_features(model, enc if subset is None else enc[:subset], mods, proj, pad_id=tok.pad_token_id,
                                 batch_size=args.batch_size, progress=False, timings=timings, autocast_bf16=bf16_on)

    def loop(timings=None):
        for b in batches:
            with torch.autocast(**bf16):
                grads = loop_grads(model, b, mods)
            for name, t in grads.items():
                proj.project(name, t.reshape(t.shape[0], -1))

    def plain(timings=None):
        for b in batches:
            with torch.autocast(**bf16):
                loss = per_example_loss(model, b).sum()
            loss.backward()
        model.zero_grad(set_to_none=True)

    if args.phase == "error":
        max_rel = 0.0
        for b in batches[:2]:
            eng, _ = per_example_grads(model, b, mods)
            ref = loop_grads(model, b, mods)
            for n in mods:
                rel = (eng[n] - ref[n]).norm(dim=(1, 2)) / ref[n].norm(dim=(1, 2)).clamp(min=1e-30)
                max_rel = max(max_rel, float(rel.max()))
        out = {"max_rel_err": max_rel}
        if args.bf16:  # what bf16 costs the features themselves: cosine of each example's bf16 and fp32 feature
            k = min(len(enc), 2 * args.batch_size)
            cos = (engine(bf16_on=True, subset=k)[0] * engine(bf16_on=False, subset=k)[0]).sum(axis=1)
            out |= {"bf16_min_cosine_vs_fp32": float(cos.min()), "bf16_mean_cosine_vs_fp32": float(cos.mean())}
            # ...and the selection: the first quarter of the examples as queries, the rest as the pool, round-robin
            # top 10 % by bf16 features against fp32 features (bench/bf16.py measures it on real data end to end)
            from winnow.selection.round_robin import select_round_robin

            full, half = engine(bf16_on=False)[0], engine(bf16_on=True)[0]
            q = max(1, len(enc) // 4)
            top = max(1, (len(enc) - q) // 10)
            picks = [set(select_round_robin(f[:q] @ f[q:].T, limit=top).indices.tolist()) for f in (full, half)]
            out["bf16_topk_overlap"] = len(picks[0] & picks[1]) / top
        return out
    fn = {"engine": engine, "loop": loop, "plain": plain}[args.phase]
    fn()  # every phase warms up on itself once (allocator, kernels, sketch tables), then is timed
    timings: dict[str, float] = {}
    _, seconds = timed(lambda: fn(timings), device)
    return {"seconds": seconds, "peak_mb": peak_memory_mb(device), "timings": timings, "n": len(enc), "data": data_src,
            "device": str(device), "threads": torch.get_num_threads(),
            "mean_tokens": sum(len(e.input_ids) for e in enc) / len(enc), "base_params": n_base,
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "",
            "lora_params": sum(m.weight.numel() for m in mods.values())}


def main() -> None:
    args = parse_args()
    if args.phase:
        print(json.dumps(run_phase(args)))
        return
    phases = {}
    for phase in ("engine", "loop", "plain", "error"):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--phase", phase]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"phase {phase} failed:\n{proc.stderr[-3000:]}")
        phases[phase] = json.loads(proc.stdout.strip().splitlines()[-1])
    e, l, p = phases["engine"], phases["loop"], phases["plain"]
    n = e["n"]
    result = {
        "settings": {k: v for k, v in vars(args).items() if k != "phase"}, "data": e["data"], "device": e["device"],
        "threads": e["threads"], "cpu": platform.processor() or platform.machine(), "lora_params": e["lora_params"],
        "mean_tokens": e["mean_tokens"], "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "engine_ex_per_s": n / e["seconds"], "loop_ex_per_s": n / l["seconds"],
        "plain_fwd_bwd_ex_per_s": n / p["seconds"], "engine_over_loop": l["seconds"] / e["seconds"],
        "engine_cost_over_plain": e["seconds"] / p["seconds"],
        "projection_share": e["timings"].get("projection", 0.0) / e["seconds"],
        "max_rel_err_vs_loop": phases["error"]["max_rel_err"],
        "peak_mb": {"engine": e["peak_mb"], "loop": l["peak_mb"], "plain": p["peak_mb"]},
        "base_params": e["base_params"], "device_name": e["device_name"], "dtype": "bf16 autocast" if args.bf16 else "fp32",
        **{k: v for k, v in phases["error"].items() if k.startswith("bf16")},
    }
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in e["device_name"]), None)
    tflops = 4 * e["base_params"] * e["mean_tokens"] * n / e["seconds"] / 1e12
    result |= {"engine_model_tflops": tflops, "peak_bf16_tflops": peak, "mfu": tflops / peak if peak else None}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"model {args.model}{' (random weights)' if args.random_init or args.model == 'llama-1b' else ''}, "
          f"{result['base_params'] / 1e6:.0f}M params, {result['dtype']}, on {result['device']} {result['device_name']} "
          f"({result['threads']} threads), {n} examples of {result['mean_tokens']:.0f} tokens, "
          f"{result['lora_params']:,} LoRA params -> {args.proj_dim} dims")
    print(f"  engine (batched per-example + projection) {result['engine_ex_per_s']:7.2f} ex/s")
    print(f"  batch-size-1 loop + projection            {result['loop_ex_per_s']:7.2f} ex/s")
    print(f"  plain batched forward+backward            {result['plain_fwd_bwd_ex_per_s']:7.2f} ex/s")
    print(f"  engine / loop speed        {result['engine_over_loop']:.2f}x   (target >= 1.3)")
    print(f"  engine cost / plain f+b    {result['engine_cost_over_plain']:.2f}x   (target <= 1.3)")
    print(f"  projection share of engine {100 * result['projection_share']:.1f} %  (target <= 20 %)")
    print(f"  max relative error vs loop {result['max_rel_err_vs_loop']:.2e}")
    if args.bf16:
        print(f"  bf16 feature cosine vs fp32: min {result['bf16_min_cosine_vs_fp32']:.4f}, "
              f"mean {result['bf16_mean_cosine_vs_fp32']:.4f}; round-robin top 10 % overlap "
              f"{result['bf16_topk_overlap']:.2f}")
    print(f"  engine model TFLOP/s {tflops:.2f}" + (f", MFU {100 * result['mfu']:.1f} % of {peak:.0f} bf16 peak"
                                                 if peak else " (no known peak for this device: no MFU)"))
    print("  peak memory of each phase's process (model included), MB: " + ", ".join(f"{k} {v:.0f}" for k, v in result["peak_mb"].items()))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
