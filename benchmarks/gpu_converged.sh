#!/usr/bin/env bash
# The converged benchmark (benchmarks/beauty_converged.py) on one GPU: every part at once, each its own process
# (a 135M model leaves an H200 mostly idle: parts that share it finish sooner than in a row), then the merge.
# Run from the repository root where gti's dependencies and a CUDA build of torch are importable:
#   SIDS=<gti sids folder> [NAME=beauty_converged_gpu] [PARTS=p,p,...] [LIMIT=seconds] [PYTHON=python3] \
#       benchmarks/gpu_converged.sh [--set KEY=VALUE ...]
# Writes benchmarks/results/$NAME_parts/<part>.json as each part ends, then benchmarks/results/$NAME_gpu.json.
# The tuning grid's parts (GRID_PARTS in beauty_converged.py, e.g. gti-lr0.0001) run when named in PARTS.
# The parts share the GPU and the CPU cores, so their seconds are seconds under sharing (the JSON says which ran).
set -uo pipefail
PYTHON=${PYTHON:-python3}
NAME=${NAME:-beauty_converged_gpu}
PARTS=${PARTS:-scratch,anchors,gti,rows-first,mean-rowlr,gti-seed1,gti-seed2,rows-first-seed1,rows-first-seed2}
LIMIT=${LIMIT:-3000}
: "${SIDS:?set SIDS to a gti sids folder: every part must run on the same SIDs}"
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_converged.sh: no CUDA device visible to torch')" || exit 1
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
logs=runs/$NAME/logs
mkdir -p "$logs"
start=$(date +%s)
for part in ${PARTS//,/ }; do
  timeout "$LIMIT" "$PYTHON" benchmarks/beauty_converged.py --name "$NAME" --run-dir "runs/$NAME" --parts "$part" \
    --sids "$SIDS" --no-merge "$@" >"$logs/$part.log" 2>&1 &
done
failed=0
for job in $(jobs -p); do wait "$job" || failed=$((failed + 1)); done
echo "gpu_converged: parts done in $(( $(date +%s) - start )) s, $failed failed (logs: $logs)"
"$PYTHON" benchmarks/beauty_converged.py --name "$NAME" --merge
