"""Result files have ordinary permissions; one writer per output folder (replicate.io)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replicate.io import OutputLocked, current_umask, output_lock, write_json

REPO = Path(__file__).resolve().parents[2]


def test_result_files_respect_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        path = write_json(tmp_path / "cell.json", {"accuracy": 0.5})
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o640  # 0666 & ~027, not mkstemp's 0600


def test_a_second_writer_of_the_same_folder_is_refused_while_the_first_lives(tmp_path):
    folder = tmp_path / "model"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom replicate.io import output_lock\n"
                               f"with output_lock({str(folder)!r}):\n    print('held', flush=True)\n"
                               "    time.sleep(60)"], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputLocked, match=f"{folder}.*pid {holder.pid}"):
            with output_lock(folder):
                pass
    finally:
        holder.kill()
        holder.wait()
    deadline = time.time() + 10
    while True:  # the kernel releases the lock of a killed holder
        try:
            with output_lock(folder):
                break
        except OutputLocked:
            assert time.time() < deadline
            time.sleep(0.1)
