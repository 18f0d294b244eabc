#!/usr/bin/env bash
# A second virtualenv at the supported floor versions (methods/versions.py), shaped like the GPU image:
# torch, transformers 5.17, safetensors, numpy, pandas, matplotlib, pyyaml, tqdm, jsonschema, pytest;
# no snakemake, fvcore or PyAV. This project installed editable without its other dependencies.
# CI (.ci/run) runs the adapter, runtime and harness tests in it; `pip install transformers==5.24.0`
# then gives Molmo2's floor.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-floor
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q "torch==2.13.0"
floor=$(sed -n 's/^TRANSFORMERS_FLOOR = "\([0-9.]*\)"/\1/p' methods/versions.py)
"$py" -m pip install -q "transformers==${floor}.0" safetensors numpy pandas matplotlib pyyaml tqdm jsonschema \
    "pytest>=8" "pytest-benchmark>=4"
"$py" -m pip install -q --no-deps -e .
"$py" -c "import torch, transformers; print('floor environment:', torch.__version__, transformers.__version__)"
