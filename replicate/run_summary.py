"""What a run prints when it ends (the Snakefile's ``onsuccess`` / ``onerror``).

Success: the run's scale, the verdict counts per paper, the headline claims' verdicts and where the
answers are (results/index.html, REPORT.md). Error: the rules that failed (with their logs) and the
claims that could not be decided because a result file they need is missing.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

PAPER_TITLES = {"holitom": "HoliTom", "tango": "Tango", "stts": "STTS"}


def _log_file(log: Any) -> str | None:
    """Snakemake's log file: the handlers' ``log`` is a path or (Snakemake 9) a list of paths."""
    if isinstance(log, (list, tuple)):
        return next((str(p) for p in log if str(p).endswith(".snakemake.log")), str(log[0]) if log else None)
    return str(log) if log else None


def _started(log: Any) -> float | None:
    """Start time of the run from Snakemake's log name (.snakemake/log/2026-01-01T120000.123456.snakemake.log)."""
    log = _log_file(log)
    if not log:
        return None
    try:
        return _dt.datetime.strptime(Path(log).name.split(".snakemake")[0], "%Y-%m-%dT%H%M%S.%f").timestamp()
    except ValueError:
        return None


def success_lines(workdir: str | Path = ".", headline: Sequence[str] = (), log: Any = None) -> list[str]:
    """The verdict summary of the run in ``workdir``; [] when this run verified no claims (e.g. the
    target was `figures`)."""
    from . import scale as run_scale
    from .report import kind

    root = Path(workdir)
    all_json = root / "results" / "claims" / "all.json"
    started = _started(log)
    if not all_json.is_file() or (started is not None and all_json.stat().st_mtime < started - 1):
        return []
    results = json.loads(all_json.read_text())
    run = run_scale.of_results(results)
    commit = ((results[0].get("provenance") or {}).get("commit") or "unknown")[:10] if results else "unknown"
    lines = [f"replicate: verdicts of this {run_scale.describe(run)} (commit {commit})"]
    by_id = {r["id"]: r for r in results}
    for paper, title in PAPER_TITLES.items():
        mine = [r for r in results if r["paper"] == paper and kind(r) == "paper"]
        if not mine:
            continue
        counts = Counter(r["verdict"] for r in mine)
        lines.append(f"  {title}: {len(mine)} claims: " + ", ".join(f"{n} {v}" for v, n in counts.most_common()))
        head: dict[str, list[str]] = {}
        for cid in headline:
            if cid in by_id and by_id[cid]["paper"] == paper:
                head.setdefault(by_id[cid]["verdict"], []).append(cid)
        for verdict, ids in head.items():
            lines.append(f"    headline {verdict}: {', '.join(ids)}")
    page = root / "results" / "index.html"
    if page.is_file():
        lines.append(f"  results page: {page.resolve()} (open it in a browser; no network needed)")
    lines.append("  every claim: results/claims/REPORT.md; browsable report: snakemake --report results/report.html")
    return lines


_FAILED = re.compile(r"^Error in rule (\S+):")
_FIELD = re.compile(r"^\s+(log|output): (.+?)(?: \(check log file\(s\) for error details\))?$")


def failed_rules(log_text: str) -> list[dict[str, str]]:
    """[{rule, log, output}] of each 'Error in rule X:' block of a Snakemake log."""
    out: list[dict[str, str]] = []
    for line in log_text.splitlines():
        m = _FAILED.match(line)
        if m:
            out.append({"rule": m.group(1).rstrip(":")})
        elif out and (f := _FIELD.match(line)) and f.group(1) not in out[-1]:
            out[-1][f.group(1)] = f.group(2)
    return out


def undecided(claims: Sequence[Mapping[str, Any]], workdir: str | Path = ".",
              config: Mapping[str, Any] | None = None) -> dict[str, list[str]]:
    """{missing result file: [claim ids]} for claims of a tier that can run here (``config``)
    whose evaluator's inputs are not all there."""
    from . import evaluators as ev
    from .tiers import tier_status

    root = Path(workdir)
    out: dict[str, list[str]] = {}
    for c in claims:
        if config is not None and not tier_status(c["tier"], config, c).runnable:
            continue  # not-run by design here (no GPU, no checkpoint): not the error's doing
        e = ev.get(c.get("evaluator"))
        for path in (e.inputs if e else ()):
            if not (root / path).exists():
                out.setdefault(path, []).append(c["id"])
                break
    return out


def error_lines(workdir: str | Path = ".", log: Any = None, config: Mapping[str, Any] | None = None,
                claims: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
    """Which rules failed and which claims could not be decided, and why."""
    from .claims import load_claims

    log = _log_file(log)
    text = Path(log).read_text(errors="replace") if log and Path(log).is_file() else ""
    failed = failed_rules(text)
    lines = ["replicate: the run stopped with an error; claims not decided by this run:"]
    for f in failed:
        where = f.get("log") or f.get("output") or "Snakemake's output above"
        lines.append(f"  rule {f['rule']} failed (see {where})")
    missing = undecided(claims if claims is not None else load_claims(), workdir, config)
    for path, ids in sorted(missing.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(ids[:3]) + (f", ... ({len(ids)} claims)" if len(ids) > 3 else "")
        lines.append(f"  {path} was not written: {shown}")
    if not (Path(workdir) / "results" / "claims" / "all.json").is_file():
        lines.append("  no claim was verified (results/claims/all.json does not exist)")
    lines.append("  fix the cause, then run the same command again: finished jobs are not redone")
    return lines
