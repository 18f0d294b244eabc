#!/usr/bin/env bash
# One-step, idempotent set-up of the project's virtual environment in ./.venv.
# CPU machines: torch is pinned to 2.13.0 first, which pip resolves to a local CPU build; an
# unpinned torch would pull several GB of CUDA packages. On a CUDA machine whose python already
# has torch (>=2.11), pass --system-torch to reuse it instead.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
system_torch=0
[[ "${1:-}" == "--system-torch" ]] && system_torch=1
if [[ ! -x "$venv/bin/python" ]]; then
    if [[ $system_torch == 1 ]]; then
        python3 -m venv --system-site-packages "$venv"
    else
        python3 -m venv "$venv"
    fi
fi
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip
if [[ $system_torch == 0 ]] && ! "$py" -c "import torch" 2>/dev/null; then
    "$py" -m pip install -q "torch==2.13.0"
fi
"$py" -m pip install -q -e ".[test]"
"$py" -m pip check
# The notebook directive runs the kernel named "python3" from PATH; register this venv's.
"$py" -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "environment ready: . $venv/bin/activate"
