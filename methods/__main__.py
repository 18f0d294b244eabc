"""``python -m methods [--json]``: list every registered method with its options and defaults."""
from __future__ import annotations

import argparse
import json
import sys

from methods.registry import describe_methods, method_class


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m methods", description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    info = describe_methods()
    from methods.attach import method_families  # which families run each method

    for name, d in info.items():
        d["cost_model_budget"] = bool(getattr(method_class(name), "pre_llm_budget", False))
        d["adapters"] = list(method_families(name))
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
        if d.get("cost_model_budget"):
            print("    cost model: its retention is a whole-token budget, rounded per frame (default, "
                  "ceil(r*N)) or over the video (round(r*F*N)): python -m costmodel ... --budget per_frame|global")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
