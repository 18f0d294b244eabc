"""``python -m methods [--json]``: list every registered method with its options, defaults and the
model families it runs on (read from the manifest: no method, and no torch, is imported).
``--write-manifest`` rewrites ``methods/manifest.json`` from the Method classes (after a change to
a method's options, families or notation)."""
from __future__ import annotations

import argparse
import json
import sys

from methods.registry import describe_methods, write_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m methods", description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--write-manifest", action="store_true",
                        help="rewrite methods/manifest.json from the Method classes (imports them)")
    args = parser.parse_args(argv)
    if args.write_manifest:
        print(f"wrote {write_manifest()}")
        return 0
    info = describe_methods()
    if args.json:
        json.dump(info, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
        return 0
    for name, d in info.items():
        print(f"{name}: {d['description']}")
        print(f"    families: {', '.join(d['families'])}")
        for opt, o in d["options"].items():
            default = "required" if o["required"] else f"default {o['default']!r}"
            print(f"    {opt} ({o['type']}): {default}")
        if d.get("budget"):
            print("    cost model: its retention is a whole-token budget, rounded per frame (default, "
                  "ceil(r*N)) or over the video (round(r*F*N)): python -m costmodel ... --budget per_frame|global")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
