"""Class 4 of issue 27: every ``python -m`` entry point refuses a user's mistake with exit code 2 and
one line (``prog: error: ...``), never a raw traceback.

The entry points are found, not listed: every module under methods/, costmodel/, replicate/ and
figures/ with ``if __name__ == "__main__"`` or named ``__main__.py``. Each is run as a subprocess
with an option it does not have. Then, per entry point, the mistakes a user makes with its own
arguments are run in-process through its ``main`` (a refused argument never starts any work).
"""
from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .helpers import REPO, assert_one_line_error, env

PACKAGES = ("methods", "costmodel", "replicate", "figures")
MAIN_GUARD = re.compile(r"^if __name__ == [\"']__main__[\"']", re.MULTILINE)


def entry_points() -> list[str]:
    found = set()
    for pkg in PACKAGES:
        for f in (REPO / pkg).rglob("*.py"):
            if f.name == "__main__.py":
                found.add(".".join(f.parent.relative_to(REPO).parts))
            elif MAIN_GUARD.search(f.read_text(encoding="utf-8")):
                found.add(".".join(f.with_suffix("").relative_to(REPO).parts))
    return sorted(found)


ENTRY_POINTS = entry_points()


def test_the_entry_points_are_found():
    assert {"costmodel", "methods", "replicate.configuration", "replicate.harness.efficiency",
            "replicate.stts_train", "replicate.paper.shard"} <= set(ENTRY_POINTS)
    assert "replicate.scripts.holitom_bench" not in ENTRY_POINTS  # a Snakemake script, not a command


@pytest.fixture(scope="module")
def unknown_option_runs() -> dict[str, subprocess.CompletedProcess]:
    """Every entry point with an option it does not have, three at a time (each imports torch)."""
    def one(module):
        return module, subprocess.run([sys.executable, "-m", module, "--no-such-option"], cwd=REPO, env=env(),
                                      capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(one, ENTRY_POINTS))


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_an_unknown_option_is_one_line_and_exit_2(unknown_option_runs, module):
    proc = unknown_option_runs[module]
    assert proc.returncode == 2, (module, proc.returncode, proc.stderr[-2000:])
    assert_one_line_error(proc.stderr)


# ---------------------------------------------------------------------------------- each one's own mistakes
def _cases(tmp: Path) -> list[tuple[str, list[str], tuple[str, ...]]]:
    """(module, argv, needles of the one error line)."""
    f = tmp / "a-file.txt"  # written by the test
    out = str(tmp / "out")
    return [
        ("replicate.harness.efficiency", ["--out", ""], ("--out", "empty path")),
        ("replicate.harness.efficiency", ["--out", str(f)], ("--out", "not a directory")),
        ("replicate.harness.efficiency", ["--out", out, "--decode-tokens", "9000"], ("--decode-tokens 9000", "context")),
        ("replicate.harness.efficiency", ["--out", out, "--device", "cdua"], ("--device 'cdua'", "cpu, cuda")),
        ("replicate.harness.efficiency", ["--out", out, "--device", "cuda:7"], ("--device cuda:7",)),
        ("replicate.harness.efficiency", ["--out", out, "--frames", "1.5"], ("--frames",)),
        ("replicate.harness.efficiency", ["--out", out, "--retention", "0.1,nan"], ("--retention",)),
        ("replicate.harness.efficiency", ["--out", out, "--methods", "vanilla,bogus"], ("--methods", "bogus")),
        ("replicate.harness.efficiency", ["--out", out, "--repeats", "0"], ("--repeats",)),
        ("replicate.harness.stts_efficiency", ["--out", out + ".json", "--topk", "1.5"], ("--topk",)),
        ("replicate.harness.stts_efficiency", ["--out", out + ".json", "--frames", "4,4"], ("--frames", "more than once")),
        ("replicate.harness.stts_efficiency", ["--out", str(tmp), "--arch", "cpu-bench"], ("--out", "is a directory")),
        ("replicate.microbench.methods", ["--out", out + ".json", "--grid", "0"], ("--grid",)),
        ("replicate.microbench.methods", ["--out", out + ".json", "--methods", "tango", "tango"], ("twice",)),
        ("replicate.stts_train", ["--out", out, "--lr", "nan"], ("--lr",)),
        ("replicate.synthvqa.train", ["--out", out, "--steps", "0"], ("--steps",)),
        ("replicate.synthvqa.train", ["--out", out, "--time-budget", "inf"], ("--time-budget",)),
        ("replicate.paper.shard", ["clean-errors", "--root", str(tmp / "mistyped")], ("--root", "does not exist")),
        ("replicate.paper.shard", ["clean-errors", "--root", str(tmp)], ("--root", "no shard-")),
        ("replicate.paper.rehearsal", ["make", out, "--samples", "0"], ("--samples",)),
        ("replicate.paper.rehearsal", ["make", out, "--claims", "no-such-claim"], ("--claims", "no-such-claim")),
        ("replicate.paper.cost", ["--hardware", "nope"], ("--hardware",)),
        ("replicate.paper.cost", ["--config", str(tmp / "none.yaml")], ("--config", "does not exist")),
        ("replicate.planning", ["--questions", "videomme=1,videomme=2"], ("videomme", "twice")),
        ("replicate.planning", ["--questions", "nobench=3"], ("nobench",)),
        ("replicate.planning", ["--answer-tokens", "-1"], ("--answer-tokens",)),
        ("replicate.report", [str(tmp / "README.md"), str(f)], ("README.md", "does not exist")),
        ("replicate.report", [str(f), str(f)], ("all.json not found", "snakemake --cores all")),
        ("replicate.browsable", [str(tmp / "report.html")], ("report.html",)),
        ("replicate.configuration", [str(tmp / "none.yaml")], ("none.yaml", "does not exist")),
        ("costmodel", ["flops", "--model", "llava-onevision-7b", "--text-tokens", "-1"], ("--text-tokens",)),
        ("costmodel", ["flops", "--model", "llava-onevision-7b", "--frames", "100000"], ("--frames 100000",)),
        ("costmodel", ["flops", "--model", "llava-onevision-7b", "--method", "holitom", "--retention", "0.1",
                       "--option", "inner_k=18", "--option", "inner_k=2"], ("--option", "inner_k", "more than once")),
        ("replicate.microbench.tango", ["--out", out + ".json", "--threads", "1,1"], ("--threads", "more than once")),
        ("replicate.microbench.tango", ["--out", out + ".json", "--frames", "0"], ("--frames",)),
        ("replicate.microbench.tango", ["--out", out + ".json", "--retention", "nan"], ("--retention",)),
        ("replicate.microbench.video_io", ["--out", out + ".json", "--fps", "0"], ("--fps",)),
        ("replicate.microbench.video_io", ["--out", out + ".json", "--video", str(tmp / "none.mp4")], ("--video",)),
        ("methods", ["--json", "extra"], ("unrecognized arguments",)),
        ("methods.predict", ["--model", str(tmp), "--video", str(f), "--question", "q", "--retention", "nan"],
         ("--retention", "(0, 1]")),
        ("methods.predict", ["--model", str(tmp), "--video", str(f), "--question", "q", "--frames", "0"], ("--frames",)),
        ("methods.predict", ["--model", str(tmp), "--video", str(f), "--question", "q", "--option", "inner_k=2",
                             "--option", "inner_k=3"], ("--option inner_k", "more than once")),
        ("methods.predict", ["--model", str(tmp), "--video", str(tmp / "none.mp4"), "--question", "q"],
         ("none.mp4", "does not exist")),
        ("methods.predict", ["--model", str(tmp), "--video", str(f), "--question", "q", "--method", "holitomm"],
         ("holitomm", "registered")),
        ("methods.predict", ["--model", str(tmp), "--video", str(f), "--question", "q", "--method", "holitom",
                             "--retention", "0.1", "--option", "inner_kk=2"], ("inner_kk", "allowed")),
        ("replicate.harness.batch_generation", ["--out", out + ".json", "--batch", "0"], ("--batch",)),
        ("replicate.harness.batch_generation", ["--out", out + ".json", "--families", "molmo2", "molmo2"],
         ("--families", "twice")),
        ("replicate.harness.batch_generation", ["--out", str(tmp)], ("--out", "is a directory")),
        ("replicate.microbench.snakemake_parse", ["--out", out + ".json", "--repo", str(tmp / "none")], ("--repo",)),
        ("replicate.microbench.snakemake_parse", ["--out", out + ".json", "--repo", str(tmp)], ("--repo", "Snakefile")),
        ("replicate.microbench.snakemake_parse", ["--out", out + ".json", "--repeats", "1.5"], ("--repeats",)),
        ("replicate.browsable", [str(f), "--claims", str(tmp / "none.json")], ("--claims", "does not exist")),
        ("replicate.gpu.device_run", ["--out", out, "--budget-s", "nan"], ("--budget-s",)),
        ("replicate.gpu.device_run", ["--out", out, "--tiny", "--sections", "llava-onevision-72b"],
         ("unknown section", "allowed")),
        ("replicate.gpu.device_run", ["--out", out, "--warmup", "-1"], ("--warmup",)),
        ("replicate.gpu.committed", [out + "-s.json", out + "-t.json", "--dir", str(tmp / "none")],
         ("no committed GPU run",)),
        ("replicate.fidelity_effects", ["--out", str(tmp)], ("--out", "is a directory")),
        ("replicate.fidelity_effects", ["--out", ""], ("--out", "empty path")),
    ]


CASE_IDS = [f"{m} {' '.join(a)}" for m, a, _ in _cases(Path("/t"))]


@pytest.mark.parametrize("index", range(len(CASE_IDS)), ids=CASE_IDS)
def test_each_entry_points_own_mistakes(tmp_path, capsys, index):
    import importlib

    (tmp_path / "a-file.txt").write_text("x")
    module, argv, needles = _cases(tmp_path)[index]
    if module not in ENTRY_POINTS:
        pytest.skip(f"{module} is not an entry point here any more")
    package_main = (REPO / module.replace(".", "/") / "__main__.py").is_file()
    mod = importlib.import_module(module + ".__main__" if package_main else module)
    try:  # refused by argparse or entry_point (SystemExit), or by a main that returns its exit code
        code = mod.main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert_one_line_error(capsys.readouterr().err, *needles)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_duplicate_methods_and_retentions_are_timed_once_with_a_notice(tmp_path, capsys):
    from replicate.harness.efficiency import ARCHS, CPU_BENCH_CONFIG, build_parser
    from replicate.harness.validate import validate_args

    args = build_parser().parse_args(["--out", str(tmp_path / "o"), "--methods", "vanilla,fastv,fastv",
                                      "--retention", "0.1,0.10,0.25"])
    checked = validate_args(args, archs=ARCHS, cpu_bench_config=CPU_BENCH_CONFIG)
    assert checked == {"methods": ["vanilla", "fastv"], "retentions": [0.1, 0.25]}
    err = capsys.readouterr().err
    assert "--methods: duplicate(s) ['fastv'] dropped" in err and "--retention: duplicate(s) ['0.1'] dropped" in err


def test_clean_errors_on_a_real_cells_folder_still_works(tmp_path, capsys):
    from replicate.io import write_jsonl as write_jsonl_atomic
    from replicate.paper.shard import main

    cells = tmp_path / "cells" / "ck" / "f8" / "vanilla" / "videomme"
    write_jsonl_atomic(cells / "shard-000-of-002.jsonl", [{"kind": "shard", "status": "error", "reason": "x"}])
    write_jsonl_atomic(cells / "shard-001-of-002.jsonl", [{"kind": "shard", "status": "ok"}])
    assert main(["clean-errors", "--root", str(tmp_path / "cells")]) == 0
    assert not (cells / "shard-000-of-002.jsonl").exists() and (cells / "shard-001-of-002.jsonl").exists()
    assert "1 error shard(s) removed" in capsys.readouterr().out
