#!/usr/bin/env bash
# The precision issue's GPU checks in one run, for a machine with a CUDA device:
#   OUT=/tmp/gpu-check bash bench/gpu_check.sh
# 1. the `gpu`-marked tests (the bf16 engine on CUDA at Qwen2.5 1.5B size against plain forwards),
# 2. bench/gpu_throughput.py at two batch sizes in bf16 and once in float32.
# Writes pytest-gpu.txt and gpu_throughput.jsonl under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/device.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'cuda', torch.cuda.is_available())" 2>&1 | tee -a "$OUT/device.txt"
# (only this file: the rlaif test modules need trl, which a bare GPU image may lack)
python3 -m pytest -p no:cacheprovider -m gpu -v -s tests/test_precision.py 2>&1 | tee "$OUT/pytest-gpu.txt"
status=${PIPESTATUS[0]}
: >"$OUT/gpu_throughput.jsonl"
for args in "--pairs 64" "--pairs 256" "--pairs 64 --dtype float32"; do
  echo "== bench/gpu_throughput.py $args"
  python3 bench/gpu_throughput.py $args "$@" 2>&1 | tee /tmp/bench.txt
  tail -n 1 /tmp/bench.txt >>"$OUT/gpu_throughput.jsonl"
done
exit "$status"
