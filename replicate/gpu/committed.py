"""Committed GPU measurements: the gpu tier's verdicts where no CUDA device is present.

A lent GPU runs the device script once (``replicate/gpu/device_run.sh``); its
``measurements.jsonl`` is committed as it came back under ``replicate/measured/<hardware>/``
(``<hardware>``: the costmodel entry of the GPU, e.g. ``h100-sxm``). On a machine without CUDA the
workflow then reads it (``paths.gpu_measurements``): rule ``gpu_from_measured`` writes the result
files the gpu evaluators read, each stamped with where and when it was measured, and every gpu
verdict names it. A machine with a CUDA device (and ``gpu: true``) measures afresh instead.

Only a real GPU run counts: a file whose header says ``tiny`` or a non-CUDA device is ignored.
``python -m replicate.gpu.committed SUMMARY STTS`` writes the two result files (the rule's job).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Optional

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = "replicate/measured"
FILE_NAME = "measurements.jsonl"
EFFICIENCY_ARCH = "llava-onevision-7b"   # the gpu claims' efficiency cells (results/gpu/efficiency)


@dataclass(frozen=True)
class Committed:
    path: Path
    header: dict
    records: list

    def source(self) -> dict:
        """Where and when these measurements were taken (stamped into results and verdicts)."""
        h = self.header
        return {"kind": "committed measurement", "file": _relative(self.path),
                "gpu": h.get("gpu") or h.get("gpu_name"), "driver": h.get("driver"), "cuda": h.get("cuda"),
                "torch": h.get("torch"), "transformers": h.get("transformers"), "commit": h.get("commit"),
                "measured_at": h.get("timestamp"), "dtype": h.get("dtype"),
                "attn_implementation": h.get("attn_implementation")}

    def describe(self) -> str:
        s = self.source()
        commit = (s["commit"] or "unknown")[:10]
        return (f"measured on {s['gpu']} (driver {s['driver']}, CUDA {s['cuda']}, torch {s['torch']}, transformers "
                f"{s['transformers']}) at {s['measured_at']}, commit {commit}; committed in {s['file']}")

    def section(self, name: str, record: str = "measurement") -> list[dict]:
        return [r for r in self.records if r.get("section") == name and r.get("record") == record]


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def load(path) -> Optional[Committed]:
    """The device run in ``path``, or None when it is not a real GPU run (tiny, CPU, no header)."""
    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines or lines[0].get("record") != "header":
        raise ValueError(f"{path}: the first line is not the device run's header record")
    header = lines[0]
    if header.get("tiny") or not str(header.get("device", "")).startswith("cuda"):
        return None
    return Committed(Path(path), header, lines[1:])


def measured_dir(config: Mapping[str, Any], repo: Path = REPO) -> Path:
    d = Path((config.get("paths") or {}).get("gpu_measurements") or DEFAULT_DIR)
    return d if d.is_absolute() else repo / d


def find(config: Mapping[str, Any], repo: Path = REPO) -> Optional[Committed]:
    """The newest committed GPU run under ``paths.gpu_measurements`` (by its header's timestamp)."""
    files = tuple((str(p), p.stat().st_mtime) for p in sorted(measured_dir(config, repo).glob(f"*/{FILE_NAME}")))
    return _newest(files)


@lru_cache(maxsize=8)
def _newest(files: tuple) -> Optional[Committed]:
    runs = [c for c in (load(p) for p, _ in files) if c]
    return max(runs, key=lambda c: c.header.get("timestamp") or "", default=None)


def efficiency_summary(c: Committed, arch: str = EFFICIENCY_ARCH) -> dict:
    """``results/gpu/efficiency/summary.json`` of the committed run: the ``arch`` section's cells
    with the device run's cost-model predictions merged in, as the gpu evaluators read them."""
    from replicate.harness.efficiency import summary_row

    predictions = {(p["method"], p["rtag"]): p for r in c.section(arch, "predictions") for p in r["cells"]}
    rows = []
    for cell in c.section(arch):
        merged = {**cell, **{k: v for k, v in predictions.get((cell["method"], cell["rtag"]), {}).items()
                             if v is not None}}
        rows.append({**summary_row(merged), "host_syncs": (cell.get("host_syncs") or {}).get("timed_stages")})
    if not rows:
        raise ValueError(f"{_relative(c.path)} has no {arch} cells")
    return {"cells": rows, "source": c.source(), "measured_on": c.describe(), "provenance": c.header}


def stts_efficiency(c: Committed) -> dict:
    """``results/gpu/stts/efficiency.json`` of the committed run (rows per frame count)."""
    summaries = c.section("molmo2-4b", "stts-summary")
    if not summaries:
        raise ValueError(f"{_relative(c.path)} has no molmo2-4b STTS summary")
    s = summaries[-1]
    return {"arch": "molmo2-4b", "topk": 0.5, "prune_at": 3, "rows": s["rows"],
            "predicted_molmo2_4b": s.get("predicted_molmo2_4b", []), "measurements": c.section("molmo2-4b"),
            "source": c.source(), "measured_on": c.describe(), "provenance": c.header}


def write_results(c: Committed, summary_path, stts_path) -> None:
    """Both result files; a section the run did not reach gets a file that says so (its claims are
    then not run, with that reason)."""
    from replicate.io import write_json

    for path, build in ((summary_path, efficiency_summary), (stts_path, stts_efficiency)):
        try:
            write_json(path, build(c))
        except ValueError as exc:
            write_json(path, {"cells": [], "rows": [], "missing": str(exc), "source": c.source(),
                              "measured_on": c.describe()})


def main(argv=None) -> int:
    from costmodel.cli import Parser, fail

    ap = Parser(prog="python -m replicate.gpu.committed", description=__doc__.split("\n\n")[0])
    ap.add_argument("summary", help="results/gpu/efficiency/summary.json to write")
    ap.add_argument("stts", help="results/gpu/stts/efficiency.json to write")
    ap.add_argument("--dir", default=DEFAULT_DIR, help=f"committed measurements (default {DEFAULT_DIR})")
    a = ap.parse_args(argv)
    found = find({"paths": {"gpu_measurements": a.dir}})
    if found is None:
        fail(ap.prog, f"no committed GPU run under {a.dir}/<hardware>/{FILE_NAME}")
    write_results(found, a.summary, a.stts)
    print(found.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
