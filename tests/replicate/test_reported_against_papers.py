"""Independent check of the reported data: cells of every replicate/reported/*.csv against values
written here by hand from the papers' sources, so an accidental edit of a CSV fails.

Source of truth: docs/sources.md (the project's reading of the papers):
#holitom-main-table (imgs/benchmark.jpeg), #holitom-backbones-table (diff_backbone.jpeg), #holitom-figures
(TTFT breakdown, decode throughput and frames sweep figures), #claim-h6 (K sweep, vs_fastv figure).
A new reported CSV needs its own sample here (the test below names the missing one).
"""
from __future__ import annotations

import csv
import math

import pytest

from replicate.claims import REPORTED_DIR

OV7, OV72, VID7 = "llava-onevision-7b", "llava-onevision-72b", "llava-video-7b"

# csv -> (source, [(row selector, column, value)]). Values typed from docs/sources.md, not from the CSVs.
SAMPLES: dict[str, tuple[str, list[tuple[dict, str, float]]]] = {
    "holitom_main.csv": ("docs/sources.md#holitom-main-table HoliTom main table, LLaVA-OV-7B 32 frames", [
        ({"method": "vanilla"}, "flops_t", 40.8),
        ({"method": "vanilla"}, "mvbench", 58.3),
        ({"method": "vanilla"}, "egoschema", 60.4),
        ({"method": "vanilla"}, "longvideobench", 56.4),
        ({"method": "vanilla"}, "videomme", 58.6),
        ({"method": "vanilla"}, "avg", 58.4),
        ({"method": "fastv"}, "flops_ratio_pct", 22.8),
        ({"method": "pdrop"}, "flops_t", 10.5),
        ({"method": "pdrop"}, "perf_pct", 96.2),
        ({"method": "dycoke"}, "longvideobench", 49.5),
        ({"method": "visionzip", "pre_llm_pct": "10"}, "avg", 53.5),
        ({"method": "prunevid", "pre_llm_pct": "20"}, "videomme", 56.9),
        ({"method": "fastvid", "pre_llm_pct": "15"}, "mvbench", 56.0),
        ({"method": "fastvid", "pre_llm_pct": "15"}, "egoschema", None),  # '–' in the paper
        ({"method": "holitom-wo-m", "pre_llm_pct": "25"}, "perf_pct", 100.5),
        ({"method": "holitom", "pre_llm_pct": "25"}, "flops_t", 7.1),
        ({"method": "holitom", "pre_llm_pct": "20"}, "flops_t", 5.8),
        ({"method": "holitom", "pre_llm_pct": "15"}, "flops_ratio_pct", 10.5),
        ({"method": "holitom", "pre_llm_pct": "10"}, "flops_t", 2.8),
        ({"method": "holitom", "pre_llm_pct": "10"}, "flops_ratio_pct", 6.9),
        ({"method": "holitom", "pre_llm_pct": "10"}, "egoschema", 61.2),
        ({"method": "holitom", "pre_llm_pct": "10"}, "avg", 57.9),
        ({"method": "holitom", "pre_llm_pct": "10"}, "perf_pct", 99.1),
    ]),
    "holitom_backbones.csv": ("docs/sources.md#holitom-backbones-table HoliTom other backbones (project page diff_backbone.jpeg)", [
        ({"model": OV72, "method": "vanilla"}, "flops_t", 429.3),
        ({"model": OV72, "method": "vanilla"}, "videomme", 65.7),
        ({"model": OV72, "method": "fastv"}, "flops_t", 86.4),
        ({"model": OV72, "method": "visionzip"}, "flops_ratio_pct", 13.7),
        ({"model": OV72, "method": "prunevid"}, "avg", 58.6),
        ({"model": OV72, "method": "holitom"}, "flops_t", 51.6),
        ({"model": OV72, "method": "holitom"}, "perf_pct", 96.0),
        ({"model": VID7, "method": "vanilla"}, "flops_t", 80.2),
        ({"model": VID7, "method": "vanilla"}, "egoschema", 57.2),
        ({"model": VID7, "method": "pdrop"}, "flops_t", 19.5),
        ({"model": VID7, "method": "pdrop"}, "flops_ratio_pct", 24.3),
        ({"model": VID7, "method": "holitom-wo-m"}, "longvideobench", 55.6),
        ({"model": VID7, "method": "holitom"}, "flops_t", 7.6),
        ({"model": VID7, "method": "holitom"}, "perf_pct", 95.8),
    ]),
    "holitom_ttft.csv": ("docs/sources.md#holitom-figures TTFT breakdown figure (ViT / other / LLM ms, score)", [
        ({"method": "vanilla"}, "vit_ms", 500),
        ({"method": "vanilla"}, "other_ms", 45),
        ({"method": "vanilla"}, "llm_ms", 1142),
        ({"method": "vanilla"}, "avg", 58.4),
        ({"method": "fastv"}, "llm_ms", 372),
        ({"method": "pdrop"}, "llm_ms", 363),
        ({"method": "visionzip"}, "other_ms", 48),
        ({"method": "visionzip"}, "llm_ms", 271),
        ({"method": "prunevid"}, "other_ms", 75),
        ({"method": "prunevid"}, "llm_ms", 214),
        ({"method": "holitom-wo-m"}, "llm_ms", 175),
        ({"method": "holitom"}, "other_ms", 85),
        ({"method": "holitom"}, "llm_ms", 156),
        ({"method": "holitom"}, "avg", 57.9),
    ]),
    "holitom_decode.csv": ("docs/sources.md#holitom-figures decode-throughput figure (tok/s)", [
        ({"method": "vanilla"}, "tok_s", 29.5),
        ({"method": "vanilla"}, "retention_pct", 100),
        ({"method": "fastv"}, "tok_s", 36.8),
        ({"method": "pdrop"}, "tok_s", 36.7),
        ({"method": "visionzip"}, "tok_s", 37.5),
        ({"method": "prunevid"}, "tok_s", 38.2),
        ({"method": "holitom-wo-m"}, "tok_s", 38.8),
        ({"method": "holitom"}, "tok_s", 38.8),
        ({"method": "holitom"}, "retention_pct", 10),
        ({"method": "fastv"}, "retention_pct", 10),
    ]),
    "holitom_k_sweep.csv": ("docs/sources.md#claim-h6 (vs-FastV K sweep figure, R = 0.5)", [
        ({"k": "2"}, "avg", 55.4),
        ({"k": "7"}, "avg", 56.1),
        ({"k": "14"}, "avg", 56.3),
        ({"k": "18"}, "avg", 57.9),
        ({"k": "21"}, "avg", 57.7),
        ({"k": "2"}, "r", 0.5),
        ({"k": "7"}, "r", 0.5),
        ({"k": "14"}, "r", 0.5),
        ({"k": "18"}, "r", 0.5),
        ({"k": "21"}, "r", 0.5),
    ]),
    "holitom_frames_sweep.csv": ("docs/sources.md#holitom-figures frames sweep (HoliTom w/o M exact; Vanilla 'about')", [
        ({"method": "holitom-wo-m", "frames": "16"}, "avg", 56.6),
        ({"method": "holitom-wo-m", "frames": "32"}, "avg", 58.5),
        ({"method": "holitom-wo-m", "frames": "64"}, "avg", 58.9),
        ({"method": "holitom-wo-m", "frames": "128"}, "avg", 59.3),
        ({"method": "vanilla", "frames": "32"}, "avg", 58.4),
        ({"method": "vanilla", "frames": "64"}, "avg", 58.4),
        ({"method": "vanilla", "frames": "128"}, "avg", 57.8),
        ({"method": "holitom-wo-m", "frames": "16"}, "approximate", "false"),
        ({"method": "holitom-wo-m", "frames": "128"}, "approximate", "false"),
        ({"method": "vanilla", "frames": "128"}, "approximate", "true"),
    ]),
    "tango_readme_efficiency.csv": ("docs/sources.md#claim-t3, Tango README efficiency reference (LLaVA-OV-7B, r = 0.1)", [
        ({"quantity": "vit_ms"}, "value", 335.6),
        ({"quantity": "other_ms"}, "value", 146.6),
        ({"quantity": "llm_prefill_ms"}, "value", 80.6),
        ({"quantity": "ttft_ms"}, "value", 562.8),
        ({"quantity": "decode_tok_s"}, "value", 83.7),
        ({"quantity": "peak_mem_gb"}, "value", 18.6),
        ({"quantity": "gpu_runtime_s"}, "value", 198.3),
        ({"quantity": "total_s"}, "value", 1315),
    ]),
}
MIN_CELLS = 10  # or every cell of a table that has fewer


def _rows(name: str) -> list[dict[str, str]]:
    with open(REPORTED_DIR / name, newline="") as fh:
        return list(csv.DictReader(fh))


def _cell(rows: list[dict[str, str]], select: dict, column: str, name: str) -> str:
    hits = [r for r in rows if all(r.get(k) == v for k, v in select.items())]
    if "model" not in select and len({r.get("model") for r in hits}) > 1:
        raise AssertionError(f"{name}: selector {select} matches several models")
    assert len(hits) == 1, f"{name}: selector {select} matches {len(hits)} rows (want exactly 1)"
    assert column in hits[0], f"{name}: no column {column!r}"
    return hits[0][column]


def test_every_reported_csv_has_a_hand_written_sample():
    names = sorted(p.name for p in REPORTED_DIR.glob("*.csv"))
    missing = [n for n in names if n not in SAMPLES]
    assert not missing, f"reported CSVs without a sample from the papers' sources in this test: {missing}"
    few = {n: len(SAMPLES[n][1]) for n in names if len(SAMPLES[n][1]) < min(MIN_CELLS, len(_rows(n)))}
    assert not few, f"need >= {MIN_CELLS} sampled cells per table, got {few}"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_reported_cells_match_the_papers(name):
    source, samples = SAMPLES[name]
    rows = _rows(name)
    wrong = []
    for select, column, want in samples:
        got = _cell(rows, select, column, name)
        if want is None or isinstance(want, str):
            ok = got == (want or "")
        else:
            ok = got != "" and math.isclose(float(got), float(want), abs_tol=1e-9)
        if not ok:
            wrong.append(f"{select} {column}: csv {got!r}, {source}: {want!r}")
    assert not wrong, f"{name} differs from {source}:\n" + "\n".join(wrong)


def test_an_edited_cell_is_caught(tmp_path, monkeypatch):
    """The check bites: one changed digit in a copy of a CSV fails the comparison."""
    import replicate.claims as claims_mod

    for p in REPORTED_DIR.glob("*.csv"):
        (tmp_path / p.name).write_text(p.read_text())
    main = tmp_path / "holitom_main.csv"
    main.write_text(main.read_text().replace("HoliTom,2.8,6.9,10", "HoliTom,2.9,6.9,10"))
    monkeypatch.setattr(claims_mod, "REPORTED_DIR", tmp_path)
    monkeypatch.setitem(globals(), "REPORTED_DIR", tmp_path)
    with pytest.raises(AssertionError, match="flops_t: csv '2.9'"):
        test_reported_cells_match_the_papers("holitom_main.csv")
