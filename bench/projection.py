"""Which projector keeps cosines best: worst-case and mean cosine error, on heavy-tailed vectors and on real
Adam-preconditioned LoRA gradients of the real model, for each projector and dimension; the default
(``features.projector`` / ``features.sjlt_nnz``) is chosen from this file's numbers.

Cosine error of a pair = |cos(Px, Py) − cos(x, y)| over all pairs of n vectors; the projection of a real
gradient is the sum of per-module sketches, exactly as ``winnow.features.gradients`` computes it.

    python bench/projection.py [--model default] [--data data/demo/pool.jsonl] [--out runs/bench/projection.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from winnow.features.projection import Projector  # noqa: E402

KINDS = [("sjlt", 1), ("sjlt", 2), ("sjlt", 4), ("sjlt", 8), ("rademacher", 1)]


def cosine_errors(exact: torch.Tensor, projected: torch.Tensor) -> dict[str, float]:
    def cos(x: torch.Tensor) -> torch.Tensor:
        x = x.double() / x.double().norm(dim=1, keepdim=True)
        return x @ x.T
    n = exact.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    err = (cos(projected) - cos(exact)).abs()[off]
    return {"max": round(float(err.max()), 4), "mean": round(float(err.mean()), 4)}


def project_modules(kind: str, nnz: int, dim: int, modules: dict[str, torch.Tensor]) -> tuple[torch.Tensor, float]:
    proj = Projector(kind, dim, seed=0, nnz=nnz)
    t0 = time.perf_counter()
    out = sum(proj.project(name, g.flatten(1)) for name, g in modules.items())
    return out, time.perf_counter() - t0


def heavy_tailed(n: int, D: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Student-t (1.5 degrees of freedom) coordinates: a few coordinates carry much of each vector's norm,
    which is where hashing each coordinate to one slot (CountSketch) is weakest. Pairs share a component, so
    the cosines span a range rather than all sitting near 0."""
    t = torch.distributions.StudentT(1.5)
    torch.manual_seed(seed)
    base = t.sample((n // 2, D))
    x = torch.cat([base, base + t.sample((n // 2, D))])
    return {"m": x}


def real_gradients(model_name: str, data: str, n: int) -> tuple[dict[str, torch.Tensor], int]:
    """Per-example LESS features before projection: a short warm-up, then Adam-preconditioned gradients."""
    from winnow.data.formatting import collate, encode
    from winnow.data.loaders import load_records
    from winnow.features.gradients import adam_precondition
    from winnow.features.per_example import lora_modules, per_example_grads
    from winnow.models.loading import load_model, load_tokenizer, resolve_model_path
    from winnow.models.lora import load_adapter
    from winnow.settings import LoraSettings, ModelSettings, TrainSettings
    from winnow.training.checkpoints import load_adam_moments, read_checkpoints
    from winnow.training.runs import train_on

    path = resolve_model_path(model_name, ROOT / ".winnow" / "models")
    recs = load_records(data).records
    model = ModelSettings(max_length=128)
    train = TrainSettings(epochs=1, lr=1e-3, batch_size=4)
    with tempfile.TemporaryDirectory() as tmp:
        train_on(recs[n:n + 24], model_path=path, model=model, train=train, lora=LoraSettings(), out_dir=tmp,
                 save_checkpoints=True, progress=False)
        ck = read_checkpoints(tmp)[-1]
        tok = load_tokenizer(path)
        net = load_adapter(load_model(path, device="cpu"), ck.adapter_dir, trainable=True)
        modules = lora_modules(net)
        moments = load_adam_moments(ck.optimizer_file, list(modules))
        batch = collate([encode(tok, r, 128) for r in recs[:n]], tok.pad_token_id)
        grads, _ = per_example_grads(net, batch, modules)
    feats = {k: adam_precondition(g, *moments[k], 0.9, 0.999, 1e-8) for k, g in grads.items()}
    return feats, sum(g[0].numel() for g in feats.values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default=str(ROOT / "data" / "demo" / "pool.jsonl"))
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--synthetic-dim", type=int, default=200_000)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "projection.json"))
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    res: dict = {"n_vectors": args.n, "heavy_tailed": {"D": args.synthetic_dim}, "real": {}}
    x = heavy_tailed(args.n, args.synthetic_dim)
    for dim in (2048, 8192):
        for kind, nnz in KINDS:
            p, secs = project_modules(kind, nnz, dim, x)
            res["heavy_tailed"][f"{kind}{nnz if kind == 'sjlt' else ''}@{dim}"] = {**cosine_errors(x["m"], p),
                                                                                 "seconds": round(secs, 2)}
    feats, D = real_gradients(args.model, args.data, args.n)
    exact = torch.cat([g.flatten(1) for g in feats.values()], dim=1)
    res["real"]["D"] = D
    for dim in (2048, 8192):
        for kind, nnz in KINDS:
            p, secs = project_modules(kind, nnz, dim, feats)
            res["real"][f"{kind}{nnz if kind == 'sjlt' else ''}@{dim}"] = {**cosine_errors(exact, p),
                                                                         "seconds": round(secs, 2)}
    for part in ("heavy_tailed", "real"):  # named ratios: each sparse sketch's worst error against dense
        for dim in (2048, 8192):
            dense = res[part][f"rademacher@{dim}"]["max"]
            for nnz in (1, 2, 4, 8):
                res[part][f"sjlt{nnz}_vs_rademacher_max@{dim}"] = round(res[part][f"sjlt{nnz}@{dim}"]["max"] / dense, 3)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
