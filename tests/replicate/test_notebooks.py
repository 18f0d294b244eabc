"""Notebooks under plain `jupyter nbconvert --execute`: they read results/ from the run directory
above their own folder, and a missing input names the Snakemake command that writes it. (Each
notebook is executed on a finished run in tests/workflow/test_workflow.py's smoke test.)"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from figures.files import require, run_directory

REPO = Path(__file__).resolve().parents[2]


def test_run_directory_is_the_nearest_folder_with_results_or_a_snakefile(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "figures" / "deep").mkdir(parents=True)
    assert run_directory(tmp_path / "figures" / "deep") == tmp_path
    assert run_directory(REPO / "figures") == REPO


def test_require_names_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.csv").write_text("x\n")
    require("here.csv", "")
    with pytest.raises(FileNotFoundError, match=r"build it first, from the repository root: snakemake --cores all "
                                                r"results/a\.csv$"):
        require("here.csv", "results/a.csv")


def test_notebook_without_its_inputs_says_what_to_run(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "figures").mkdir()
    nb = tmp_path / "figures" / "holitom_flops.py.ipynb"
    shutil.copy(REPO / "figures" / nb.name, nb)
    proc = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", str(nb),
                           "--output", "out.ipynb"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode != 0
    assert ("snakemake --cores all results/claims/all.json results/analytic/flops.csv" in proc.stderr), proc.stderr[-2000:]
