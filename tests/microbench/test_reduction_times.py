"""``python -m replicate.microbench.reduction_times``: CPU times of the reductions, Tango against the
released reference, and ``--against`` an earlier checkout timed in the same process (issue 26)."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from replicate.microbench.reduction_times import Checkout, main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def old_tree(tmp_path_factory) -> Path:
    """A copy of this checkout's methods/ and costmodel/ with one marked change: the copy's DyCoke
    module carries a constant this checkout's lacks, so the test can tell which tree ran."""
    tree = tmp_path_factory.mktemp("old")
    for pkg in ("methods", "costmodel"):
        shutil.copytree(ROOT / pkg, tree / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    dycoke = tree / "methods" / "baselines" / "dycoke.py"
    dycoke.write_text(dycoke.read_text() + "\nTREE_MARK = 'old'\n")
    return tree


def test_an_earlier_checkout_runs_its_own_code_beside_this_one(old_tree):
    old = Checkout(old_tree)
    m = old.method("dycoke", {"retention": 0.25})
    module = old.modules[type(m).__module__]
    assert Path(module.__file__).resolve().is_relative_to(old_tree.resolve())
    assert module.TREE_MARK == "old"
    import methods.baselines.dycoke as mine

    assert not hasattr(mine, "TREE_MARK")                       # this checkout's modules are back
    assert Path(sys.modules["methods"].__file__).resolve().is_relative_to(ROOT)


def test_cli_times_both_checkouts_and_compares_their_outputs(old_tree, tmp_path):
    out = tmp_path / "rt.json"
    assert main(["--out", str(out), "--inputs", "cut-2", "--methods", "dycoke", "visionzip", "--dim", "16",
                 "--repeats", "2", "--warmup", "1", "--threads", "1", "--against", str(old_tree)]) == 0
    rec = json.loads(out.read_text())
    assert rec["against"]["tree"] == str(old_tree.resolve())
    cut2 = rec["inputs"]["cut-2"]
    for name in ("dycoke", "visionzip"):
        run = cut2["methods"][name]
        assert len(run["wall_s"]) == 2 and len(run["against"]["wall_s"]) == 2
        assert run["against"]["speedup_wall"] == pytest.approx(run["against"]["median_wall_s"] / run["median_wall_s"])
        assert run["against"]["output"] == {"indices_equal": True, "max_abs_feature_diff": 0.0}   # same code
    ref = cut2["tango_vs_reference"]
    assert ref["output_check"]["indices_equal"] and ref["speedup_wall"] > 0


def test_cli_refuses_a_folder_without_methods(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path / "x.json"), "--against", str(tmp_path)])
    assert e.value.code == 2 and "no methods/__init__.py" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_keep_freed_allocator_is_recorded_with_page_faults(tmp_path):
    """``--allocator keep-freed`` changes glibc for the whole process, so it runs in a child."""
    import subprocess

    out = tmp_path / "keep.json"
    run = subprocess.run([sys.executable, "-m", "replicate.microbench.reduction_times", "--out", str(out),
                          "--inputs", "cut-8", "--methods", "dycoke", "--no-reference", "--dim", "16",
                          "--repeats", "2", "--warmup", "1", "--threads", "1", "--allocator", "keep-freed"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rec = json.loads(out.read_text())
    assert rec["allocator"].startswith("glibc mallopt: M_MMAP_MAX=0")
    assert rec["inputs"]["cut-8"]["methods"]["dycoke"]["median_page_faults"] >= 0


def test_cli_rejects_an_unknown_allocator(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path / "x.json"), "--allocator", "jemalloc"])
    assert e.value.code == 2 and "keep-freed" in capsys.readouterr().err


def test_cli_gemm_choice_reaches_this_checkouts_gemms(tmp_path, onednn_calls, capsys):
    """``--gemm matmul`` keeps every CPU GEMM of this checkout off oneDNN for the run (and only for
    it); the default goes through oneDNN's kernel."""
    from methods.primitives import similarity

    calls = onednn_calls
    common = ["--inputs", "cut-2", "--methods", "tango", "--no-reference", "--dim", "16", "--repeats", "1",
              "--warmup", "0", "--threads", "1"]
    for gemm in ("matmul", "onednn"):
        calls.clear()
        out = tmp_path / f"{gemm}.json"
        assert main(["--out", str(out), "--gemm", gemm, *common]) == 0
        assert json.loads(out.read_text())["gemm"] == gemm
        assert (len(calls) > 0) == (gemm == "onednn")
        assert similarity._CPU_ONEDNN == [True]
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path / "x.json"), "--gemm", "openblas"])
    assert e.value.code == 2 and "matmul" in capsys.readouterr().err
