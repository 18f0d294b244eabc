"""The device script (replicate/gpu): a dry run of the whole script on tiny models on the CPU, the
budget stop, and the device time it plans for."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from replicate.gpu import device_run as D


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / D.MEASUREMENTS).read_text().splitlines()]


def test_dry_run_of_the_whole_script_on_tiny_models(tmp_path):
    from methods.versions import molmo2_supported

    assert D.main(["--tiny", "--out", str(tmp_path)]) == 0
    recs = _records(tmp_path)
    head, done = recs[0], recs[-1]
    assert head["record"] == "header" and done["record"] == "done" and done["stopped"] is None
    for key in ("torch", "transformers", "commit", "dtype", "attn_implementation", "command", "cuda", "timestamp"):
        assert key in head, key
    cells = [r for r in recs if r["record"] == "measurement" and r["section"] != "molmo2-4b"]
    by_section = {}
    for r in cells:
        by_section.setdefault(r["section"], []).append(r["method"])
    spans = {name: [r for r in cells if r["section"] == name] for name in ("reduction-spans", "reduction-spans-compiled")}
    for r in (*spans["reduction-spans"], *spans["reduction-spans-compiled"]):
        cells.remove(r)
    assert by_section == {"llava-onevision-7b": list(D.OV_METHODS), "llava-video-7b": ["vanilla", "tango"],
                          "qwen2.5-vl-7b": ["vanilla", "tango"], "reduction-spans": 3 * list(D.REDUCTION_METHODS),
                          "reduction-spans-compiled": list(D.REDUCTION_METHODS)}
    assert all(r["status"] == "ok" and r["measured"]["ttft_s"] > 0 and "memory" in r for r in cells)
    # issue 26 item 4: every reduction timed alone with its op counts, then compiled (dynamo's eager
    # backend on the CPU): output equal to eager, no target judged off a GPU
    assert {r["input"] for r in spans["reduction-spans"]} == {"no-cut", "cut-8", "cut-2"}
    assert all(r["median_ms"] > 0 and r["ops"] > 0 and r["meets_target"] is None for r in spans["reduction-spans"])
    assert all(r["backend"] == "eager" and r["indices_equal"] and r["median_ms"] > 0
               for r in spans["reduction-spans-compiled"])
    stts = [r for r in recs if r.get("section") == "molmo2-4b"]
    if molmo2_supported():
        got = [(r["method"], r["measurement"]) for r in stts if r["record"] == "measurement"]
        assert got == [(m, k) for m in ("vanilla", "stts") for k in ("inference", "train_step")]
        assert all(r["status"] == "ok" for r in stts if r["record"] == "measurement")
    else:
        assert [r["record"] for r in stts] == ["skipped"] and "5.24" in stts[0]["reason"]
    # the order written is the order measured: each section's records between its start and end
    order = [r["record"] for r in recs if r.get("section") == "llava-video-7b"]
    assert order[0] == "section-start" and order[-1] == "section-end"


def test_the_budget_stops_the_run_cleanly(tmp_path, monkeypatch):
    """The alarm stops a section that outlasts the budget (here one that would run for 60 s; the
    tiny models alone may finish inside any budget short enough for a test)."""
    import time

    def endless_section(section, adapter, s, write):
        for i in range(600):
            write({"record": "measurement", "section": section.name, "i": i})
            time.sleep(0.1)

    monkeypatch.setattr(D, "run_efficiency_section", endless_section)
    t0 = time.monotonic()
    D.main(["--tiny", "--out", str(tmp_path), "--budget-s", "1.5", "--sections", "llava-onevision-7b"])
    recs = _records(tmp_path)
    assert recs[-1]["record"] == "done" and "budget of 2 s reached" in recs[-1]["stopped"]
    assert recs[0]["record"] == "header" and time.monotonic() - t0 < 30
    assert sum(r["record"] == "measurement" for r in recs) < 600   # stopped, wherever the alarm landed


def test_an_alarm_lost_in_a_destructor_still_stops_the_run(tmp_path, monkeypatch):
    """The alarm's exception vanishes when it fires inside a garbage-collection callback; the run
    stops at its next record all the same, and says why."""
    def alarm_swallowed_during_gc(device):
        D._BUDGET_OVER[0] = True

    monkeypatch.setattr(D, "_free", alarm_swallowed_during_gc)
    D.main(["--tiny", "--out", str(tmp_path), "--repeats", "1", "--warmup", "0",
            "--sections", "llava-video-7b,qwen2.5-vl-7b"])
    recs = _records(tmp_path)
    assert recs[-1]["record"] == "done" and recs[-1]["stopped"] == "budget of 540 s reached"
    assert {r.get("section") for r in recs} == {None, "llava-video-7b"}


def test_bad_arguments_are_refused_before_anything_runs(tmp_path, capsys):
    for argv, needle in ((["--sections", "llava-onevision-72b"], "unknown section"),
                         (["--repeats", "0", "--tiny"], "--repeats")):
        with pytest.raises(SystemExit) as refused:  # one line, exit code 2
            D.main(["--out", str(tmp_path), *argv])
        err = capsys.readouterr().err.strip()
        assert refused.value.code == 2 and len(err.splitlines()) == 1 and needle in err
    assert not (tmp_path / D.MEASUREMENTS).exists()


def test_the_planned_device_time_fits_the_budget():
    """The cost model's estimate of every section on an H100 (roofline plus build and launch
    overheads) leaves room inside the 540 s budget for the roofline's optimism."""
    s = D.Settings(out=Path("unused"))
    est = {sec.name: D.estimate_section_s(sec, s, "h100-sxm") for sec in D.SECTIONS}
    assert all(v > D.BUILD_S for v in est.values())
    planned = sum(v for sec, v in zip(D.SECTIONS, est.values()) if sec.kind not in D.OPPORTUNISTIC)
    assert planned < s.budget_s / 2, est
    # what is left then has room for the compiled reduction spans' first compilation
    assert all(est[sec.name] < s.budget_s - planned for sec in D.SECTIONS if sec.kind in D.OPPORTUNISTIC)


def test_the_shell_entry_point_carries_wheels_and_passes_arguments(repo_root):
    sh = (repo_root / "replicate" / "gpu" / "device_run.sh").read_text()
    assert "--no-index --no-deps" in sh and '--target "$site"' in sh and 'replicate.gpu.device_run --out "$out" "$@"' in sh
    assert "carry=[\".whl\"]" in sh


def _probe_wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel (one module) standing in for the carried transformers wheel."""
    import zipfile

    path = directory / "carried_probe-1.0-py3-none-any.whl"
    files = {"carried_probe.py": "CARRIED = True\n",
             "carried_probe-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: carried-probe\nVersion: 1.0\n",
             "carried_probe-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                 "Tag: py3-none-any\n"}
    record = "".join(f"{name},,\n" for name in files) + "carried_probe-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in {**files, "carried_probe-1.0.dist-info/RECORD": record}.items():
            z.writestr(name, text)
    return path


def test_the_shell_script_dry_runs_on_the_cpu_with_a_carried_wheel(tmp_path, repo_root):
    """``bash replicate/gpu/device_run.sh --tiny`` as the device tool runs it, in a tree of the
    project's packages with a carried wheel in .whl/: the wheel is installed with pip, offline, into the
    site folder that leads PYTHONPATH, and the measurements of the requested section are written
    (nvidia-smi missing here: its error is kept, the run goes on)."""
    import os
    import subprocess
    import sys

    tree = tmp_path / "tree"        # the working tree as the device gets it, with its own .whl/
    tree.mkdir()
    for package in ("replicate", "methods", "costmodel"):
        (tree / package).symlink_to(repo_root / package, target_is_directory=True)
    (tree / ".whl").mkdir()
    _probe_wheel(tree / ".whl")
    out, site = tmp_path / "out", tmp_path / "site"
    env = {**os.environ, "OUT": str(out), "SITE": str(site),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", str(tree / "replicate" / "gpu" / "device_run.sh"), "--tiny",
                           "--sections", "llava-video-7b", "--repeats", "1", "--warmup", "0"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (site / "carried_probe.py").is_file()
    recs = _records(out)
    assert recs[0]["record"] == "header" and recs[-1]["record"] == "done"
    assert [r["method"] for r in recs if r["record"] == "measurement"] == ["vanilla", "tango"]
    assert (out / "log.txt").is_file() and (out / "nvidia-smi.csv").is_file()
