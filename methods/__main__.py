"""``python -m methods [--json]``: list every registered method with its options and defaults."""
from __future__ import annotations

import json
import sys

from costmodel.cli import Parser, entry_point
from methods.registry import describe_methods


@entry_point("python -m methods")
def main(argv=None) -> int:
    parser = Parser(prog="python -m methods", description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    info = describe_methods()
    from methods.adapters.molmo2 import MOLMO2_METHODS  # which adapters run each method
    from methods.adapters.qwen2_5_vl import QWEN2_5_VL_METHODS

    for name, d in info.items():
        d["adapters"] = (["llava-onevision"] + (["qwen2.5-vl"] if name in QWEN2_5_VL_METHODS else [])
                         + (["molmo2"] if name in MOLMO2_METHODS else []))
    if args.json:
        json.dump(info, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
        return 0
    for name, d in info.items():
        print(f"{name}: {d['description']}")
        print(f"    adapters: {', '.join(d['adapters'])}")
        for opt, o in d["options"].items():
            default = "required" if o["required"] else f"default {o['default']!r}"
            print(f"    {opt} ({o['type']}): {default}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
