"""dask-cuda as Winnow's GPU runtime uses it: a LocalCUDACluster (one worker per GPU, the cluster class
``flows.runtime`` picks when CUDA is present), and on every worker the gradient engine on the tiny model.

Writes JSON: the workers, the GPU each one sees (CUDA_VISIBLE_DEVICES, device name) and its features/s. Needs
CUDA and dask-cuda; on CPU it says so and exits 0 without a file (``bench/gpu.sh`` reports it as skipped).

    python bench/dask_cuda.py --out runs/bench/gpu_dask_cuda.json
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


def probe(n: int = 64) -> dict:
    """Runs on a worker: the engine on the tiny model, on the one GPU this worker was given."""
    import os

    import torch

    from tests.fixtures.tiny import make_tiny_model
    from winnow.data.formatting import encode
    from winnow.data.records import parse_record
    from winnow.features.gradients import gradient_features
    from winnow.features.per_example import lora_modules
    from winnow.features.projection import Projector
    from winnow.models.loading import load_model, load_tokenizer
    from winnow.models.lora import attach_lora
    from winnow.settings import LoraSettings

    path = str(make_tiny_model(Path(tempfile.gettempdir()) / f"winnow-dask-cuda-{os.getpid()}"))
    tok = load_tokenizer(path)
    model = attach_lora(load_model(path, device="cuda"), LoraSettings(r=8, alpha=16, dropout=0.0), seed=0).eval()
    enc = [encode(tok, parse_record({"prompt": "add two numbers " * (k % 7 + 1), "response": str(k),
                                     "source": "s", "task": "t"}), 128) for k in range(n)]
    mods = lora_modules(model)
    gradient_features(model, enc[:8], mods, Projector("sjlt", 1024, seed=0), pad_id=tok.pad_token_id, batch_size=8,
                      progress=False)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    vecs, _ = gradient_features(model, enc, mods, Projector("sjlt", 1024, seed=0), pad_id=tok.pad_token_id,
                                batch_size=16, progress=False)
    torch.cuda.synchronize()
    return {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "device_count": torch.cuda.device_count(),
            "device_name": torch.cuda.get_device_name(0), "features": list(vecs.shape),
            "features_per_s": n / (time.perf_counter() - t0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "gpu_dask_cuda.json"))
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("skipped: dask-cuda needs CUDA")
        return
    from dask_cuda import LocalCUDACluster
    from distributed import Client

    t0 = time.perf_counter()
    with LocalCUDACluster(threads_per_worker=1) as cluster, Client(cluster) as client:
        start = time.perf_counter() - t0
        workers = client.run(probe)  # every worker, each on its own GPU
    res = {"gpus": torch.cuda.device_count(), "workers": len(workers), "cluster_start_s": start,
           "one_worker_per_gpu": len(workers) == torch.cuda.device_count()
           and len({w["cuda_visible_devices"].split(",")[0] for w in workers.values()}) == len(workers),
           "per_worker": workers}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    if not res["one_worker_per_gpu"]:
        sys.exit("dask-cuda did not start one worker per GPU")


if __name__ == "__main__":
    main()
