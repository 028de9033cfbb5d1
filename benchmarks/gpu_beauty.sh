#!/usr/bin/env bash
# The whole Beauty pipeline on one large GPU: SIDs, mean init vs GTI, bf16, every user; target 12 minutes.
# Run from the repository root with an environment where gti and a CUDA build of torch are installed:
#   PYTHON=.venv/bin/python benchmarks/gpu_beauty.sh
# Writes benchmarks/results/gpu_beauty.json (the demo's schema plus the machine and the wall time).
set -euo pipefail
PYTHON=${PYTHON:-python3}
DATA=${BEAUTY:-../shared/data/beauty}
OUT=${RUN_DIR:-runs/gpu_beauty}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_beauty.sh: no CUDA device visible to torch')"
start=$(date +%s)
"$PYTHON" -m gti.cli compare configs/beauty.toml --methods mean,gti --set "data.source=\"$DATA\"" --out "$OUT"
wall=$(( $(date +%s) - start ))
"$PYTHON" benchmarks/collect_run.py "$OUT" benchmarks/results/gpu_beauty.json --wall "$wall" \
  --note "configs/beauty.toml, all users, methods mean and gti, one GPU"
echo "gpu_beauty: ${wall} s (target 720 s)"
