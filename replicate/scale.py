"""Which run made a result: its scale, derived from the configuration the run actually used.

- ``smoke``: the smoke profile's smallest pipeline (``cpu.train.smoke: true``, profiles/smoke);
- ``rehearsal``: the paper tier on tiny checkpoints and fixture benchmarks (``paper.rehearsal: true``,
  profiles/rehearsal);
- ``full``: every key that sets the size of the work at its default (only site keys such as
  ``paths`` or ``gpu`` may differ: they decide what can run, not how much of it);
- ``custom``: anything else (a grid, sample count or sweep changed by hand).

``default`` is true when no key differs from the defaults at all: the run the README describes
(``snakemake --cores all`` on a CPU machine). The README's claims table is refreshed only from such a
run (``python -m replicate.report``).
"""
from __future__ import annotations

from typing import Any, Mapping

SCALES = ("full", "smoke", "rehearsal", "custom")
#: what each scale means, for notes under titles
MEANING = {
    "full": "every size key at its default",
    "smoke": "profiles/smoke: the whole pipeline at its smallest (a few samples, a 20-second training)",
    "rehearsal": "profiles/rehearsal: the paper tier on tiny random checkpoints and fixture benchmarks",
    "custom": "sizes changed from the defaults",
    "unknown": "claims without a recorded scale",
}
#: keys that say where and on what the run happens, not how much of it: a full run may set them
SITE_KEYS = ("paths", "gpu", "hardware")


def config_differences(config: Mapping[str, Any], default: Mapping[str, Any] | None = None,
                       depth: int = 2) -> list[str]:
    """Dotted keys (at most ``depth`` levels) whose value differs from the default config."""
    if default is None:
        from .configuration import load_config

        default = load_config()
    out: list[str] = []

    def walk(a: Any, b: Any, prefix: str, level: int) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping) and level < depth:
            for key in sorted(set(a) | set(b), key=str):
                walk(a.get(key), b.get(key), f"{prefix}{key}.", level + 1)
        elif a != b:
            out.append(prefix.rstrip("."))

    walk(dict(config), dict(default), "", 0)
    return out


def run_scale(config: Mapping[str, Any], default: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"scale", "default", "differs"}`` of the run whose resolved config is ``config``."""
    differs = config_differences(config, default)
    if (config.get("paper") or {}).get("rehearsal"):
        scale = "rehearsal"
    elif ((config.get("cpu") or {}).get("train") or {}).get("smoke"):
        scale = "smoke"
    elif all(key.split(".")[0] in SITE_KEYS for key in differs):
        scale = "full"
    else:
        scale = "custom"
    return {"scale": scale, "default": not differs, "differs": differs}


def export_scale(config: Mapping[str, Any]) -> str:
    """Put the run's scale in the environment (figures.plots.SCALE_ENV) for the jobs to inherit: every
    figure a smoke / rehearsal / custom run writes is labelled so (figures.plots.mark_scale)."""
    import os

    from figures.plots import SCALE_ENV

    scale = run_scale(config)["scale"]
    os.environ[SCALE_ENV] = scale
    return scale


def describe(run: Mapping[str, Any]) -> str:
    """One phrase for titles: 'full default run', 'smoke run', 'custom run (cpu.n_samples, ...)'."""
    scale = run.get("scale", "unknown")
    if scale == "full":
        return "full default run" if run.get("default") else "full run (site keys set: " + ", ".join(run["differs"]) + ")"
    if scale == "custom":
        keys = list(run.get("differs") or [])
        return "custom run (" + ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "") + " differ from the defaults)"
    return f"{scale} run"


def of_results(results) -> dict[str, Any]:
    """The run of a list of claim JSONs (they were written by one verify job: one run)."""
    runs = {repr(r.get("run")) for r in results}
    if not results or len(runs) != 1 or results[0].get("run") is None:
        return {"scale": "unknown", "default": False, "differs": [],
                "problem": "claims carry no run scale (written before scales were recorded)" if len(runs) == 1
                else "claims come from more than one run"}
    return dict(results[0]["run"])


def report_mismatch(config: Mapping[str, Any], all_json: str = "results/claims/all.json") -> str | None:
    """Why ``snakemake --report`` under ``config`` would describe another run than the one in results/
    (None when it matches). Snakemake's report rebuilds the job graph from the config it is given: a
    smoke run reported without its profile lists the default run's jobs ("Missing metadata" for files
    that run never wrote)."""
    import json
    from pathlib import Path

    path = Path(all_json)
    if not path.is_file():
        return f"{all_json} does not exist: the report describes a finished run; run `snakemake --cores all` first"
    written = of_results(json.loads(path.read_text()))
    now = run_scale(config)
    if written.get("scale") == "unknown" or (written["scale"], written["differs"]) == (now["scale"], now["differs"]):
        return None
    hint = {"smoke": "--profile profiles/smoke", "rehearsal": "--profile profiles/rehearsal --configfile ..."}
    flags = hint.get(written["scale"], "<the run's --profile and --config>")
    return (f"results/ holds a {describe(written)}, but this --report was asked with the config of a {describe(now)}; "
            f"make the report with the run's own profile and config: snakemake {flags} --report results/report.html")
