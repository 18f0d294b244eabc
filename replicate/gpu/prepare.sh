#!/usr/bin/env bash
# Run HERE (a machine with PyPI), before the device call: puts what the GPU image lacks into .whl/
# (git-ignored; the device tool carries it with `carry: [".whl"]`):
#   - the transformers wheel of the supported floor for Molmo2 (pure Python; the image has 5.17, which
#     has no Molmo2; its needs huggingface_hub >= 1.31, tokenizers 0.23, safetensors 0.8 are on the image);
#   - .whl/commit.txt: the commit (and whether the tree is dirty) the device run reports, since the
#     device machine gets the working tree without .git.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^MOLMO2_TRANSFORMERS_FLOOR = "\([0-9.]*\)"/\1/p' methods/versions.py)
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl "transformers==${version}.0"
echo "$(git rev-parse HEAD) $([[ -n $(git status --porcelain) ]] && echo dirty || echo clean)" > .whl/commit.txt
du -sh .whl && ls .whl
