"""Which report category a figure or table belongs to (the browsable report and results/index.html
group the run's files the same way)."""
from __future__ import annotations

from pathlib import Path

#: category -> title shown in the report
CATEGORIES = {
    "holitom": "HoliTom", "tango": "Tango", "stts": "STTS",
    "project": "This project: cost model and its own claims",
    "synthvideoqa": "SynthVideoQA analogues (tiny model, cpu tier)",
}
#: file-name markers of the cpu tier's SynthVideoQA outputs (checked before the paper names)
ANALOGUE_MARKERS = ("cpu_", "synth", "_cpu")


def category_of(path: str) -> str:
    """The report category of a figure or table, from its file name."""
    name = Path(path).name.lower()
    if any(m in name for m in ANALOGUE_MARKERS):
        return "synthvideoqa"
    for paper in ("holitom", "tango", "stts"):
        if paper in name:
            return paper
    return "project"
