#!/usr/bin/env bash
# robust_grid.py on one lent GPU machine (the device tool), from the repository root there. The
# wheels medshield needs beyond that machine's image travel in .whl/, the two MedMNIST files in
# .gpu_data/ (both ignored by git); the journal and the log come back in $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src MEDSHIELD_DATA_ROOT=$PWD/.gpu_data PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, medshield; print('torch', torch.__version__, torch.cuda.get_device_name(0))" || exit 1
cd benchmarks && python3 robust_grid.py run --device cuda --workers "${WORKERS:-8}" --seeds 0 --headline-seeds 1,2 \
    --full-width --deadline-s "${DEADLINE:-420}" --work /tmp/robust --journal "$PWD/results/robust_cpu.jsonl" \
    ${EXCLUDE:+--exclude "$EXCLUDE"} 2>&1 | tee "$OUT/robust_gpu.log"
cp results/robust_cpu.jsonl "$OUT/"
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
