"""Bad input never changes a result silently (issue 15): > 60 bad inputs, each a clear error.

Every case below is something a user can type -- the workflow config and ``--config`` values, the
methods API, video and checkpoint loading, the efficiency harness, the cost-model CLI, SynthVideoQA,
claim targets -- and each must raise an error whose message names the offending key or argument.

Guards, for every test of this module:
- ``results_unchanged``: a small ``results/`` tree (cells, CSV, claims) is hashed before and after
  each test; a bad input must not remove or change anything previously computed.
- ``memory_and_time_guard``: the process's address-space limit is lowered to what it uses now plus
  2 GiB (an input that tries to allocate more gets MemoryError, not the machine), and SIGALRM stops a
  test after 90 s (a hang fails instead of blocking the suite). Subprocess cases get RLIMIT_AS 2 GiB
  above torch's import footprint and a timeout.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .helpers import tree_hash

REPO = Path(__file__).resolve().parents[2]
GIB = 1024 ** 3
BASE_CONFIG = __import__("replicate.configuration", fromlist=["load_config"]).load_config()


# ------------------------------------------------------------------------------------ guards
@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    """A small results tree like the workflow's (cheap: written by hand, not computed)."""
    root = tmp_path_factory.mktemp("work") / "results"
    cells = {"cpu/accuracy/holitom/r0.10.json": {"status": "ok", "accuracy": 0.61, "rtag": "r0.10"},
             "cpu/accuracy/vanilla/full.json": {"status": "ok", "accuracy": 0.83, "rtag": "full"},
             "cpu/efficiency/tango/r0.10.json": {"status": "ok", "measured": {"ttft_s": 0.4}},
             "claims/project-costmodel-cpu-ttft-tango-r10.json": {"verdict": "refuted", "measured": 0.8},
             "analytic/flops.json": {"rows": [{"model": "llava-onevision-7b", "paper_tflops": 2.8}]}}
    for rel, obj in cells.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(obj))
    (root / "cpu" / "accuracy.csv").write_text("method,rtag,accuracy\nholitom,r0.10,0.61\n")
    (root / "analytic" / "predictions.csv").write_text("hardware,ttft_s\nh100-sxm,0.1\n")
    return root


@pytest.fixture(autouse=True)
def results_unchanged(results_dir):
    before = tree_hash(results_dir)
    yield
    assert tree_hash(results_dir) == before, "a bad input changed or removed a previous result"


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.fixture(autouse=True)
def memory_and_time_guard():
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_size() + 2 * GIB
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))

    def _hang(signum, frame):
        raise TimeoutError("bad input took more than 90 s (a hang)")

    old = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(90)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _limited():  # preexec_fn of subprocess cases: 2 GiB above torch's import footprint
    resource.setrlimit(resource.RLIMIT_AS, (4 * GIB, resource.RLIM_INFINITY))


def _run(args, cwd=REPO, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_limited)


# ------------------------------------------------------------------------------------ config
def _merged(override: dict) -> dict:
    from replicate.configuration import deep_merge

    return deep_merge(BASE_CONFIG, override)


def _grid(**cell):
    return {"analytic": {"grid": [{"models": ["llava-onevision-7b"], "methods": ["vanilla", "fastv"], **cell}]}}


NAN, INF = float("nan"), float("inf")
CONFIG_CASES = [
    ({"cpu": {"options": {"holitom": {"bogus": 1}}}}, ["cpu.options.holitom", "bogus", "inner_k"]),
    ({"cpu": {"options": {"holitom": {"k": "abc"}}}}, ["cpu.options.holitom.k", "'abc'", "int"]),
    ({"cpu": {"options": {"holitom": {"inner_r": 1.5}}}}, ["cpu.options.holitom", "inner_r"]),
    ({"cpu": {"options": {"holitom": {"merge": "median"}}}}, ["cpu.options.holitom", "merge"]),
    ({"cpu": {"options": {"fastv": {"k": 40}}}}, ["cpu.options.fastv", "layer index"]),
    ({"cpu": {"options": {"fastv": {"scoring": "first"}}}}, ["cpu.options.fastv.scoring", "'first'"]),
    ({"cpu": {"options": {"dycoke": {"decode_prune": 2}}}}, ["cpu.options.dycoke", "decode_prune"]),
    ({"cpu": {"options": {"tango": {"intra_k": 2.5}}}}, ["cpu.options.tango.intra_k", "int"]),
    ({"cpu": {"options": {"nosuch": {}}}}, ["cpu.options", "nosuch"]),
    ({"cpu": {"options": {"holitom": 3}}}, ["cpu.options.holitom"]),
    (_grid(retentions=[0.1], options={"fastv": {"k": -1}}), ["analytic.grid[0].options.fastv"]),
    ({"cpu": {"retentions": [NAN]}}, ["cpu.retentions[0]", "nan"]),
    ({"cpu": {"retentions": [INF]}}, ["cpu.retentions[0]", "inf"]),
    ({"cpu": {"retentions": [0]}}, ["cpu.retentions"]),
    ({"cpu": {"retentions": [1.5]}}, ["cpu.retentions"]),
    ({"holitom": {"sweep_retention": NAN}}, ["holitom.sweep_retention"]),
    ({"holitom": {"bench": {"static_fraction": INF}}}, ["holitom.bench.static_fraction"]),
    ({"hardware": "nope-gpu"}, ["hardware", "h100-sxm"]),
    ({"dtype": "fp8"}, ["dtype", "bf16"]),
    ({"seeds": [-1]}, ["seeds"]),
    ({"seeds": []}, ["seeds"]),
    ({"cpu": {"n_samples": 0}}, ["cpu.n_samples"]),
    ({"cpu": {"split": "train"}}, ["cpu.split", "test"]),
    ({"cpu": {"threads": 0}}, ["cpu.threads"]),
    (_grid(retentions=[0.1], frames=[100000]), ["analytic.grid[0].frames", "context length"]),
    ({"holitom": {"frames": [100000]}}, ["holitom.frames", "context length"]),
    ({"holitom": {"k_sweep": [40]}}, ["holitom.k_sweep"]),
    ({"tiers": {"cpu": "maybe"}}, ["tiers.cpu"]),
    ({"cpus": {"n_samples": 4}}, ["cpus", "allowed keys", "'cpu'"]),
    ({"efficiency": {"cpu": {"frames": 0}}}, ["efficiency.cpu.frames"]),
    ({"efficiency": {"cpu": {"frames": 2000}}}, ["efficiency.cpu.frames", "context length"]),
    ({"efficiency": {"gpu": {"frames": 100000}}}, ["efficiency.gpu.frames", "at most 167 frames"]),
    ({"efficiency": {"cpu": {"methods": ["bogus"]}}}, ["efficiency.cpu.methods"]),
    ({"analytic": {"budget_rounding": "floor", "grid": BASE_CONFIG["analytic"]["grid"]}},
     ["analytic.budget_rounding", "per_frame_ceil"]),
]


@pytest.mark.parametrize("override,needles", CONFIG_CASES, ids=[str(i) for i in range(len(CONFIG_CASES))])
def test_bad_config_is_named(override, needles):
    from replicate.configuration import ConfigError, check_all

    with pytest.raises(ConfigError) as exc:
        check_all(_merged(override))
    for needle in needles:
        assert needle in str(exc.value), f"{needle!r} not in: {exc.value}"


def test_checkpoint_dir_without_config_json_is_named(tmp_path):
    from replicate.configuration import ConfigError, check_all

    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"paths\.checkpoints\.llava-onevision-7b.*config\.json"):
        check_all(_merged({"paths": {"checkpoints": {"llava-onevision-7b": str(tmp_path)}}}))


def test_paper_tier_refuses_checkpoint_without_config_json(tmp_path):
    from replicate.tiers import tier_status

    cfg = _merged({"paths": {"checkpoints": {"llava-onevision-7b": str(tmp_path)}}})
    st = tier_status("paper", cfg, {"setting": {"model": "llava-onevision-7b"}})
    assert not st.runnable and "paths.checkpoints.llava-onevision-7b" in st.reason and "config.json" in st.reason


# --config values arrive through YAML's BaseLoader: every scalar is a string
CLI_CASES = [
    ({"gpu": "perhaps"}, ["gpu"]),
    ({"cpu": {"n_samples": "many"}}, ["cpu.n_samples"]),
    ({"seeds": ["1", "-2"]}, ["seeds"]),
    ({"cpu": {"retentions": ["nan"]}}, ["cpu.retentions"]),
    ({"cpu": {"retentions": [".nan"]}}, ["cpu.retentions[0]"]),
    ({"cpu": {"options": {"fastv": {"k": "two"}}}}, ["cpu.options.fastv.k"]),
    ({"hardware": "H100"}, ["hardware"]),
]


@pytest.mark.parametrize("override,needles", CLI_CASES, ids=[str(i) for i in range(len(CLI_CASES))])
def test_bad_cli_config_is_named(override, needles):
    from replicate.configuration import ConfigError, check_all, coerce_cli_values

    with pytest.raises(ConfigError) as exc:
        check_all(coerce_cli_values(_merged(override)))
    for needle in needles:
        assert needle in str(exc.value)


def test_valid_nested_cli_values_are_coerced_by_schema_types():
    from replicate.configuration import check_all, coerce_cli_values

    cfg = coerce_cli_values(_merged({"cpu": {"n_samples": "4", "retentions": ["0.5"],
                                                  "options": {"fastv": {"k": "3"}}},
                                     "seeds": ["1"], "gpu": "true"}))
    check_all(cfg)
    assert cfg["cpu"]["n_samples"] == 4 and cfg["cpu"]["retentions"] == [0.5]
    assert cfg["seeds"] == [1] and cfg["gpu"] is True and cfg["cpu"]["options"]["fastv"] == {"k": 3}
    assert cfg["cpu"]["methods"] == BASE_CONFIG["cpu"]["methods"]  # merged, not replaced


def test_profile_config_is_layered_under_a_cli_configfile(tmp_path):
    """--profile profiles/smoke --configfile x.yaml kept x.yaml and silently dropped smoke.yaml."""
    from replicate.configuration import layer_profile_configfiles

    user = {"cpu": {"n_samples": 3}}
    cfg = _merged(user)  # what Snakemake builds: workflow config + the CLI config file only
    argv = ["snakemake", "--profile", str(REPO / "profiles" / "smoke"), "--configfile", "x.yaml"]
    layered = layer_profile_configfiles(cfg, user, argv, REPO)
    smoke = yaml.safe_load((REPO / "profiles" / "smoke" / "smoke.yaml").read_text())
    assert layered and cfg["cpu"]["n_samples"] == 3  # the user's file wins where it speaks
    assert cfg["cpu"]["methods"] == smoke["cpu"]["methods"]  # smoke kept elsewhere
    assert cfg["analytic"]["grid"] == smoke["analytic"]["grid"]


def test_hardware_enum_matches_costmodel_table():
    from replicate.configuration import schema

    table = yaml.safe_load((REPO / "costmodel" / "hardware.yaml").read_text())
    assert sorted(schema()["properties"]["hardware"]["enum"]) == sorted(table)


# ------------------------------------------------------------------------------------ tags
@pytest.mark.parametrize("value,needle", [(NAN, "retention"), (INF, "retention"), ("0.1", "retention"),
                                          (True, "retention")])
def test_bad_retention_for_a_tag(value, needle):
    from replicate.harness.options import rtag

    with pytest.raises(ValueError, match=needle):
        rtag(value)


@pytest.mark.parametrize("tag", ["r0.1", "rnan", "rinf", "r1e-05", "0.10", "r"])
def test_bad_retention_tag(tag):
    from replicate.harness.options import parse_rtag

    with pytest.raises(ValueError, match=f"bad retention tag '{tag}'"):
        parse_rtag(tag)


def test_tags_are_lossless_and_distinct():
    from replicate.harness.options import parse_rtag, rtag

    assert rtag(0.125) == "r0.125" and rtag(0.10) == "r0.10" and rtag(0.101) != rtag(0.104)
    for r in (0.1, 0.125, 0.101, 0.104, 0.25, 1.0, 1e-5, 1 / 3):
        assert parse_rtag(rtag(r)) == r


# ------------------------------------------------------------------------------------ methods API
METHOD_CASES = [
    ("holitomm", {}, "holitomm"),
    ("holitom", {"retention": 0.1, "bogus": 1}, "bogus"),
    ("holitom", {"retention": NAN}, "retention"),
    ("holitom", {"retention": 0}, "retention"),
    ("holitom", {"retention": 0.1, "tau": 2.0}, "tau"),
    ("fastv", {"keep": 1.5}, "keep"),
    ("holitom", {}, "retention"),
]


@pytest.mark.parametrize("name,options,needle", METHOD_CASES)
def test_bad_method_options(name, options, needle):
    from methods.registry import get_method

    with pytest.raises(ValueError, match=needle):
        get_method(name, **options)


def test_inner_layer_beyond_the_model_is_named():
    from methods import apply_method
    from methods.adapters import LlavaOnevisionAdapter

    with pytest.raises(ValueError, match="K=18"):
        apply_method(LlavaOnevisionAdapter.tiny(), "holitom", retention=0.10)


def test_vanilla_with_a_retention_is_refused():
    from methods.baselines.inner_llm import Vanilla
    from methods.setting import PaperSetting

    with pytest.raises(ValueError, match="vanilla prunes nothing"):
        Vanilla.from_setting(PaperSetting(0.5, llm_layers=4))


# ------------------------------------------------------------------------------------ videos
def _video(path: Path, frames: int, *, faststart: bool = False) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as c:
        s = c.add_stream("libx264", rate=10, options={"g": "10"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            img = np.random.RandomState(i).randint(0, 255, (48, 64, 3)).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    good = _video(d / "good.mp4", 40, faststart=True)
    data = good.read_bytes()
    (d / "truncated.mp4").write_bytes(data[:int(len(data) * 0.4)])
    (d / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    (d / "notes.mp4").write_text("not a video\n")
    return d


@pytest.mark.parametrize("name,kwargs,needle,names_path", [
    ("missing.mp4", {}, "does not exist", True),
    ("corrupt.mp4", {}, "cannot decode", True),
    ("notes.mp4", {}, "cannot decode", True),
    ("truncated.mp4", {"on_truncated": "error"}, "truncated", True),
    ("good.mp4", {"on_truncated": "ignore"}, "on_truncated", False),
    ("good.mp4", {"frames": 0}, "frames must be an int", False),
    ("good.mp4", {"frames": 41}, "40 decodable frames but 41", True),
    ("truncated.mp4", {"frames": 30}, "decodable frames but 30", True),
])
def test_bad_video_is_named(videos, name, kwargs, needle, names_path):
    import warnings

    from methods.video_io import load_video

    kwargs = {"frames": 4, **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the truncation warning; the error is asserted
        with pytest.raises(ValueError) as exc:
            load_video(videos / name, kwargs.pop("frames"), 28, **kwargs)
    assert needle in str(exc.value)
    assert not names_path or str(videos / name) in str(exc.value)


def test_truncated_video_is_sampled_from_its_decodable_span_with_a_warning(videos):
    from methods.video_io import load_video

    with pytest.warns(RuntimeWarning, match="truncated"):
        clip = load_video(videos / "truncated.mp4", 4, 28)
    assert clip.truncated and clip.declared_frames == 40 and clip.total_frames < 40


# ------------------------------------------------------------------------------------ checkpoints
def test_checkpoint_without_config_json(tmp_path):
    from methods.adapters import LlavaOnevisionAdapter

    with pytest.raises(ValueError, match="config.json"):
        LlavaOnevisionAdapter.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        LlavaOnevisionAdapter.from_pretrained(tmp_path / "nope")


# ------------------------------------------------------------------------------------ harness
def _harness_args(results_dir, *extra):
    from replicate.harness.efficiency import build_parser

    return build_parser().parse_args(["--out", str(results_dir / "cpu" / "efficiency"), *extra])


HARNESS_CASES = [
    (["--frames", "0"], "--frames"),
    (["--frames", "2000"], "--frames 2000"),
    (["--frames", "100000"], "context length"),
    (["--arch", "llava-onevision-7b", "--frames", "200"], "at most 167 frames"),
    # Qwen2.5-VL: 256 tokens per temporal group of 2 input frames -> 128 per frame, 128000 / 128
    (["--arch", "qwen2.5-vl-7b", "--frames", "1001"], "at most 1000 frames"),
    (["--retention", "0"], "--retention"),
    (["--retention", "1.5"], "--retention"),
    (["--retention", "nan"], "--retention"),
    (["--retention", "abc"], "--retention"),
    (["--retention", ","], "--retention"),
    (["--methods", "bogus"], "--methods"),
    (["--methods", ","], "--methods"),
    (["--hardware", "nope-gpu"], "--hardware"),
    (["--repeats", "0"], "--repeats"),
    (["--warmup", "-1"], "--warmup"),
    (["--decode-tokens", "0"], "--decode-tokens"),
    (["--threads", "0"], "--threads"),
    (["--device", "tpu"], "--device"),
]


@pytest.mark.parametrize("extra,needle", HARNESS_CASES, ids=[" ".join(c[0]) for c in HARNESS_CASES])
def test_bad_harness_argument_is_named_before_timing(results_dir, capsys, extra, needle):
    """Refused while parsing (argparse types: exit 2, one line) or by validate_args, before timing."""
    from replicate.harness.efficiency import ARCHS, CPU_BENCH_CONFIG
    from replicate.harness.validate import HarnessArgumentError, validate_args

    try:
        args = _harness_args(results_dir, *extra)
    except SystemExit as exc:
        assert exc.code == 2
        assert needle.split()[0] in capsys.readouterr().err
        return
    with pytest.raises(HarnessArgumentError) as exc:
        validate_args(args, archs=ARCHS, cpu_bench_config=CPU_BENCH_CONFIG)
    assert needle in str(exc.value)


@pytest.mark.parametrize("out", ["/proc/not-writable", "FILE"])
def test_harness_out_must_be_a_writable_dir(results_dir, out):
    from replicate.harness.validate import HarnessArgumentError, check_out_dir

    out = str(results_dir / "cpu" / "accuracy.csv") if out == "FILE" else out
    with pytest.raises(HarnessArgumentError, match="--out"):
        check_out_dir(out)


def test_harness_main_fails_fast_and_keeps_old_results(results_dir):
    """The whole entry point: a bad --hardware exits non-zero in seconds, nothing is written."""
    proc = _run([sys.executable, "-m", "replicate.harness.efficiency", "--hardware", "nope-gpu",
                 "--out", str(results_dir / "cpu" / "efficiency")], timeout=60)
    assert proc.returncode != 0 and "--hardware 'nope-gpu'" in proc.stderr
    assert "timing" not in proc.stderr  # refused before the timing loop began


# ------------------------------------------------------------------------------------ cost model CLI
@pytest.mark.parametrize("extra,needle", [
    (["--frames", "100000"], "--frames 100000"),
    (["--retention", "nan"], "retention"),
    (["--method", "bogus"], "--method"),
    (["--frames", "0"], "frames"),
])
def test_bad_costmodel_cli_argument(capsys, extra, needle):
    from costmodel.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["flops", "--model", "llava-onevision-7b", "--method", "holitom", "--retention", "0.1", *extra])
    assert exc.value.code == 2 and needle in capsys.readouterr().err


def test_costmodel_cli_unknown_hardware(capsys):
    from costmodel.__main__ import main

    with pytest.raises(SystemExit):
        main(["latency", "--model", "llava-onevision-7b", "--hardware", "nope-gpu"])
    assert "--hardware" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ SynthVideoQA
@pytest.mark.parametrize("args,needle", [(("train2", 3), "train2"), (("test", -1), "n must be"),
                                         (("test", 3, -1), "seed must be"), (("test", 2.5), "n must be")])
def test_bad_synthvqa_split(args, needle):
    from replicate.synthvqa.data import make_split

    with pytest.raises(ValueError, match=needle):
        make_split(*args)


def test_huge_synthvqa_split_is_lazy():
    from replicate.synthvqa.data import make_split

    split = make_split("test", 100_000_000)
    assert len(split) == 100_000_000 and split[99_999_999].family in split.cfg.families
    with pytest.raises(IndexError, match="out of range"):
        split[100_000_000]


# ------------------------------------------------------------------------------------ claim targets
def test_mistyped_claim_target_lists_close_ids():
    from replicate.claims import CLAIMS_FILE, load_claims
    from replicate.configuration import unknown_claim_message

    ids = [c["id"] for c in load_claims(CLAIMS_FILE)]
    msg = unknown_claim_message("holitom-flops-ov7b-r1", ids)
    assert "holitom-flops-ov7b-r1" in msg and "'holitom-flops-ov7b-r10'" in msg


# ------------------------------------------------------------------------------------ accuracy cells
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from dataclasses import replace

    from replicate.synthvqa.train import smoke_config, train

    out = tmp_path_factory.mktemp("ckpt") / "model"
    train(replace(smoke_config(), steps=1, threads=1, n_val=1, n_test=1), out, log=lambda *a, **k: None)
    return out


def test_accuracy_cell_with_a_bad_option_fails_instead_of_not_applicable(tiny_checkpoint):
    """The silent wrong result: {inner_r: 1.5} used to become a not-applicable cell over a good one."""
    from replicate.harness.accuracy import run_accuracy_cell

    with pytest.raises(ValueError, match="inner_r"):
        run_accuracy_cell(tiny_checkpoint, "holitom", {"inner_r": 1.5}, 0.5, n_samples=1, progress=False)
    rule = run_accuracy_cell(tiny_checkpoint, "dycoke", None, 0.10, n_samples=1, progress=False)
    assert rule["status"] == "not-applicable" and "retention must be >=" in rule["reason"]  # the method's rule


# ------------------------------------------------------------------------------------ the workflow
def _snakemake(workdir: Path, *args, timeout=240):
    return _run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(REPO / "Snakefile"),
                 "--directory", str(workdir), *args], timeout=timeout)


def test_dry_run_fails_on_a_bad_method_option(results_dir):
    proc = _snakemake(results_dir.parent, "--config", 'cpu={"options": {"holitom": {"bogus": 1}}}')
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "cpu.options.holitom" in out and "bogus" in out


def test_dry_run_names_the_new_key_of_a_renamed_one(results_dir):
    """A --config that still uses the cpu tier's old section name is told the new one."""
    proc = _snakemake(results_dir.parent, "--config", 'embedded={"n_samples": 4}')
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "'embedded' was renamed to 'cpu'" in out, out[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("config,needle", [("hardware=nope-gpu", "hardware"),
                                           ('cpu={"retentions": [".nan"]}', "cpu.retentions"),
                                           ('cpu={"n_samples": "x"}', "cpu.n_samples")])
def test_dry_run_fails_naming_the_key(results_dir, config, needle):
    proc = _snakemake(results_dir.parent, "--config", config)
    assert proc.returncode != 0 and needle in proc.stdout + proc.stderr


@pytest.mark.slow
def test_dry_run_mistyped_claim_target(results_dir):
    proc = _snakemake(results_dir.parent, "results/claims/holitom-flops-ov7b-r1.json")
    assert proc.returncode != 0 and "holitom-flops-ov7b-r10" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_dry_run_profile_and_configfile_layer(results_dir, tmp_path):
    extra = tmp_path / "x.yaml"
    extra.write_text("cpu:\n  n_samples: 3\n")
    proc = _snakemake(results_dir.parent, "--profile", str(REPO / "profiles" / "smoke"), "--configfile", str(extra))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "smoke.yaml'] layered" in out
    assert any(line.split()[:2] == ["cpu_accuracy_cell", "3"] for line in out.splitlines())  # the smoke grid


@pytest.mark.parametrize("frames", [0, -3, 2.5])
def test_run_efficiency_from_python_rejects_bad_frames(frames):
    from replicate.harness.efficiency import run_efficiency

    with pytest.raises(ValueError, match="frames must be a whole number"):
        run_efficiency(arch="cpu-bench", methods=["vanilla"], retentions=[0.5], frames=frames, progress=False)


def test_a_failure_after_timing_keeps_the_measured_timings(tmp_path, monkeypatch):
    """A late failure (here: the cost-model predictions) must not lose what was timed."""
    import replicate.harness.efficiency as eff

    def broken(*a, **k):
        raise RuntimeError("prediction step failed")

    monkeypatch.setattr(eff, "add_predictions", broken)
    out = tmp_path / "eff"
    with pytest.raises(RuntimeError, match="prediction step failed"):
        eff.main(["--arch", "cpu-bench", "--frames", "2", "--methods", "vanilla", "--retention", "0.5",
                  "--repeats", "1", "--warmup", "0", "--decode-tokens", "2", "--out", str(out)])
    saved = json.loads((out / "measured.json").read_text())
    assert [c["method"] for c in saved["cells"]] == ["vanilla"]
    assert saved["cells"][0]["measured"]["ttft_s"] > 0
    assert not (out / "summary.json").exists()
