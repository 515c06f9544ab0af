#!/usr/bin/env bash
# What a bare GPU image lacks for bench/gpu.sh, gathered into .gpu/ (git-ignored) on a machine that reaches the
# package registry: Python 3.12 x86-64 wheels of the packages the image does not hold (pydantic for
# winnow.settings, zstandard for the loaders, dask + distributed + dask-cuda for the cluster check), and
# SmolLM2-135M's config and tokenizer from the converted default model. Under 64 MiB, so it can travel with the
# working tree. dask and distributed follow dask-cuda's own pin (rapids-dask-dependency), not the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
rm -rf .gpu && mkdir -p .gpu/whl .gpu/smollm2
wheels=(pydantic==2.14.3 pydantic_core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5 zstandard==0.25.0
        dask==2026.7.1 distributed==2026.7.1 dask-cuda==26.10.0 rapids-dask-dependency==26.10.0 partd==1.4.2
        locket==1.0.0 tblib==3.2.2 tornado==6.6.1 zict==3.0.0)
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
  -d .gpu/whl "${wheels[@]}"
model=$($PY -c "from pathlib import Path; from winnow.models.loading import resolve_model_path; \
print(resolve_model_path('default', Path('.winnow/models')))")
for f in "$model"/*; do
  case "$f" in *.safetensors|*.bin|*.gguf) ;; *) cp "$f" .gpu/smollm2/ ;; esac
done
du -sh .gpu
echo "device run: bash bench/gpu.sh, carrying .gpu (BENCH_OUT=\$OUT to bring the JSON back)"
