"""Disagreements with the lmms-eval releases before and after the evaluation protocols: a measurement.

    python tests/parity/before_after.py [--before ab7bbe8] [--json OUT.json]

"After" is this tree's rules (``compare.ProjectRules``: replicate/benchmarks/protocol_rules.py) and
"before" the project as it was at ``--before`` (default ab7bbe8, the commit the protocols branched
from): its one prompt per benchmark (``registry.format_prompt``), its one lenient parser
(``prompts.parse_letter``) and its scoring (``scoring.score``: an unparsed reply counts wrong in the
denominator; MVBench and MLVU the mean of the tasks present). The old tree is exported with
``git archive`` into a temporary folder and run in a child interpreter whose path puts it first, so
the two ``replicate`` packages never meet. Both sides go through the same ``compare`` (the releases'
own task code from the PyPI wheels, the same documents and replies as the parity tests) and count
disagreements in prompt, extracted answer, per-question score and aggregate. A reply the old parser
could not read counts as agreeing with a release that extracts nothing ('' or None), so the before
counts are a lower bound. Needs git and PyPI (the wheels are cached in --cache).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KINDS = ("prompt", "extracted", "score", "aggregate")


class BeforeRules:
    """The project's rules at the ``--before`` commit (imported from the old tree in the child)."""

    def prompt(self, protocol, sample, wrapper: str) -> str:
        from replicate.benchmarks.registry import format_prompt

        return format_prompt(sample)  # one text per benchmark, whatever the wrapper

    def score(self, protocol, samples, replies):
        from replicate.benchmarks.prompts import parse_letter
        from replicate.benchmarks.scoring import score

        idx = [parse_letter(r, len(s.options)) for s, r in zip(samples, replies)]
        views = []
        for s, i in zip(samples, idx):
            if s.benchmark == "mvbench":
                views.append(tuple(i == k for k in range(5)))
            elif s.benchmark == "egoschema":
                views.append(-1 if i is None else i)
            else:
                views.append("" if i is None else "ABCDE"[i])
        corrects = [i == s.answer_index for s, i in zip(samples, idx)]
        per_task: dict[str, list[bool]] = {}
        for s, c in zip(samples, corrects):
            per_task.setdefault(s.sample_id.split("/")[0], []).append(c)
        tasks = {t: 100.0 * sum(v) / len(v) for t, v in per_task.items()}
        return views, corrects, score(samples, idx)["headline_accuracy"], None, tasks


class _Unit:
    def __init__(self, unit: str):
        self.unit = unit


class _ProtocolView:
    """What ``compare`` reads of a protocol (its seed, each benchmark's unit), passed as data."""

    def __init__(self, seed: int, units: dict[str, str]):
        self.seed, self.units = seed, units

    def task(self, name: str) -> _Unit:
        return _Unit(self.units[name])


def cases() -> list[dict]:
    """(protocol, release, benchmark, wrappers, seed, unit) of every parity case, from this tree."""
    sys.path.insert(0, str(HERE))
    from test_lmms_eval_parity import CASES, RELEASE_OF

    from replicate.benchmarks.protocols import PROTOCOLS

    out = []
    for p, b in CASES:
        protocol = PROTOCOLS[p]
        wrappers = [(w, w if w in ("llava_onevision", "llava_vid") else "default") for w in protocol.wrappers]
        out.append({"protocol": p, "release": RELEASE_OF[p], "benchmark": b, "wrappers": wrappers,
                    "seed": protocol.seed, "unit": protocol.task(b).unit})
    return out


def measure(todo: list[dict], side: str, cache: Path) -> list[dict]:
    """Run every case with ``side``'s rules (``before``: the old tree must be first on sys.path)."""
    sys.path.insert(0, str(HERE))
    from compare import ProjectRules, compare
    from lmms_release import Release, fetch

    data = HERE / "data"
    docs, replies = (json.loads((data / f).read_text()) for f in ("docs.json", "replies.json"))
    releases = {}
    rules = BeforeRules() if side == "before" else ProjectRules()
    rows = []
    for case in todo:
        v = case["release"]
        if v not in releases:
            root, digest = fetch(v, cache)
            releases[v] = Release(v, root, digest)
        if side == "before":
            protocol = _ProtocolView(case["seed"], {case["benchmark"]: case["unit"]})
        else:
            from replicate.benchmarks.protocols import PROTOCOLS

            protocol = PROTOCOLS[case["protocol"]]
        with tempfile.TemporaryDirectory() as tmp:
            rep = compare(protocol, case["benchmark"], releases[v], rules, docs[case["benchmark"]],
                          replies[case["benchmark"]], Path(tmp) / case["benchmark"], [tuple(w) for w in case["wrappers"]])
        rows.append({**{k: case[k] for k in ("protocol", "release", "benchmark")}, "side": side,
                     "disagreements": rep.counts, "compared": rep.compared})
    return rows


def run_before(todo: list[dict], ref: str, cache: Path) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "replicate", "methods", "costmodel"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        (Path(tmp) / "cases.json").write_text(json.dumps(todo))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(HERE)])}
        proc = subprocess.run([sys.executable, __file__, "--child", str(Path(tmp) / "cases.json"),
                               "--cache", str(cache)], env=env, capture_output=True, text=True, cwd=tmp)
        if proc.returncode != 0:
            raise SystemExit(f"the {ref} side failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout)


def table(rows: list[dict]) -> str:
    by = {(r["protocol"], r["benchmark"], r["side"]): r for r in rows}
    lines = ["| protocol | benchmark | compared (prompt/extracted/score/aggregate) | before | after |",
             "|---|---|---|---|---|"]
    totals = {s: dict.fromkeys(KINDS, 0) for s in ("before", "after")}
    compared = dict.fromkeys(KINDS, 0)
    for p, b, side in by:
        if side != "after":
            continue
        cells = []
        for s in ("before", "after"):
            d = by[(p, b, s)]["disagreements"]
            cells.append("/".join(str(d[k]) for k in KINDS))
            for k in KINDS:
                totals[s][k] += d[k]
        c = by[(p, b, "after")]["compared"]
        for k in KINDS:
            compared[k] += c[k]
        lines.append(f"| {p} | {b} | {'/'.join(str(c[k]) for k in KINDS)} | {cells[0]} | {cells[1]} |")
    lines.append(f"| **total** | | {'/'.join(str(compared[k]) for k in KINDS)} | "
                 f"{'/'.join(str(totals['before'][k]) for k in KINDS)} | "
                 f"{'/'.join(str(totals['after'][k]) for k in KINDS)} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default="ab7bbe8", help="the commit whose rules are 'before' (default ab7bbe8)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "lmms_eval_wheels",
                    help="where the lmms-eval wheels are downloaded once")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:  # the old tree's side, in its own interpreter
        import replicate

        if Path(replicate.__file__).resolve().is_relative_to(REPO):
            raise SystemExit(f"the child imported this tree's replicate ({replicate.__file__}), not the old one")
        print(json.dumps(measure(json.loads(args.child.read_text()), "before", args.cache)))
        return
    todo = cases()
    rows = run_before(todo, args.before, args.cache) + measure(todo, "after", args.cache)
    print(f"disagreements with the releases' own task code, before ({args.before}) and after (this tree):")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
