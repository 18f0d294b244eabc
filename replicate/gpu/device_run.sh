#!/usr/bin/env bash
# The one command a lent GPU machine runs (replicate/gpu/prepare.sh first, here). Device tool call:
#   run(command="bash replicate/gpu/device_run.sh", carry=[".whl"], timeout_s=600)
# It installs the carried transformers wheel beside the image's packages (no network), then runs
# `python -m replicate.gpu.device_run`, which checks the versions before it measures, writes every
# measurement to $OUT/measurements.jsonl as it is taken and stops cleanly at its budget (540 s).
# Extra arguments go to device_run (e.g. --sections llava-onevision-7b --budget-s 300).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-results/gpu/device} site=${SITE:-/tmp/site}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl \
        || { echo "installing the carried wheels failed" >&2; exit 1; }
    export PYTHONPATH="$site:$PWD"
else
    echo "no .whl/ here: the image's transformers runs (Molmo2 needs >= 5.24: replicate/gpu/prepare.sh)" >&2
fi
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,clocks.sm --format=csv > "$out/nvidia-smi.csv" 2>&1
python3 -m replicate.gpu.device_run --out "$out" "$@" 2>&1 | tee "$out/log.txt"
exit "${PIPESTATUS[0]}"
