"""lmms-eval 0.7.3 (PyPI) runs the videoprune model: its reported accuracy on a fixture Video-MME task
equals the paper tier's evaluation of the same cells, and its per-sample answers equal the paper
tier's predictions.

lmms-eval's declared dependencies (torchvision, timm, av<16, wandb, ...) would break this CPU
install, so it goes into a virtualenv of its own created here: ``lmms-eval==0.7.3`` with
``--no-deps``, plus only what its command line, task loading and Video-MME utilities import
(``LMMS_DEPS``, pinned: accelerate and loguru for ``lmms_eval.__main__``; datasets, evaluate and
their fsspec/aiohttp stack for task loading; sacrebleu, pytablewriter and their helpers imported by
the metrics and the results table; opencv-python-headless for ``tasks/videomme/utils.py``;
filelock < 4 because lmms-eval patches ``filelock._api``, which filelock 4 removed). Torch,
transformers and the rest come from the project's environment (a ``.pth`` file adds its
site-packages), and the project itself is installed there editable with ``--no-deps``, so lmms-eval
finds ``videoprune`` through the ``lmms_eval.models`` entry point as a user's install would.

The task is lmms-eval's own Video-MME prompt, answer extraction and aggregation
(``lmms_eval.tasks.videomme.utils``) over the project's Video-MME fixture (HF parquet layout,
videos under ``$HF_HOME/videomme/data``) in a task directory given with ``--include_path``. The
checkpoint is the tiny LLaVA-OV with its weights rearranged to answer one option letter that
depends on the video, the prompt and the pruning (``letter_answering``), so accuracy is neither 0 nor
the same for every method. The README's ``lmms-eval --model videoprune ...`` line runs too, as
written but for the checkpoint (a tiny random LLaVA-OV with the 7B's 28 LLM layers) and the task
(the fixture task; the README's ``pip install -e ".[lmms]"`` is replaced by the install above).
Skips when PyPI is unreachable. Run: ``python -m pytest -m lmms``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.lmms

REPO = Path(__file__).resolve().parents[2]
LMMS_EVAL = "lmms-eval==0.7.3"
LMMS_DEPS = (
    "accelerate==1.16.0", "loguru==0.7.3", "datasets==5.2.0", "evaluate==0.4.6", "dill==0.4.1",
    "multiprocess==0.70.19", "xxhash==4.1.0", "pytz==2026.6", "aiohttp==3.14.5", "aiohappyeyeballs==2.7.1",
    "aiosignal==1.4.0", "frozenlist==1.8.0", "multidict==7.2.1", "yarl==1.25.1", "propcache==0.5.4",
    "filelock==3.32.7", "sacrebleu==2.6.0", "colorama==0.4.6", "lxml==6.2.1", "pytablewriter==1.2.1",
    "DataProperty==1.1.1", "typepy==2.0.0", "mbstrdecoder==1.1.5", "tabledata==1.3.5", "tcolorpy==0.1.7",
    "pathvalidate==3.3.1", "chardet==7.7.0", "opencv-python-headless==5.1.0.95",
)
N_SAMPLES = 8
FRAMES = 8
#: the paper tier's cells compared: (method, retention)
CELLS = (("vanilla", None), ("holitom", 0.25))


def _pip(python: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def lmms_python(tmp_path_factory) -> Path:
    """The python of a virtualenv with lmms-eval (no deps), LMMS_DEPS and this project (editable)."""
    root = tmp_path_factory.mktemp("lmms_venv")
    wheels = root / "wheels"
    probe = _pip(Path(sys.executable), "download", "--no-deps", LMMS_EVAL, "-d", str(wheels), timeout=300)
    if probe.returncode != 0:
        pytest.skip(f"PyPI unreachable (pip download {LMMS_EVAL} failed): {probe.stderr.strip().splitlines()[-1:]}")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    project_site = sysconfig.get_paths()["purelib"]
    # addsitedir (not a bare path) so the project environment's own .pth files (editable installs) apply
    Path(site, "project_env.pth").write_text(f"import site; site.addsitedir({project_site!r})\n")
    for args in (("install", "--no-deps", str(next(wheels.glob("*.whl")))), ("install", "--no-deps", *LMMS_DEPS),
                 ("install", "--no-deps", "-e", str(REPO))):
        proc = _pip(python, *args)
        assert proc.returncode == 0, f"pip {' '.join(args[:3])}... failed:\n{proc.stderr[-3000:]}"
    return python


def letter_answering(src: Path, out: Path, layer_scale: float = 0.2, big: float = 20.0, seed: int = 1) -> Path:
    """A copy of a tiny random LLaVA-OV checkpoint that answers one option letter, then stops.

    Each decoder layer's output projections are scaled by ``layer_scale`` (the residual stream stays
    near the current token's embedding, moved by the context); the LM head is zero except: letter
    k's row = ``big`` x (the unit embedding of "\\n", the prompt's last token, + a unit direction
    orthogonal to it, random per letter), so after the prompt one of A-D wins and which one depends
    on the video, the question and the pruning; the end-of-sequence row = 2 ``big`` x the sum of the
    letters' unit embeddings, so it wins right after a letter."""
    import torch
    from transformers import AutoTokenizer, LlavaOnevisionForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(src)
    model = LlavaOnevisionForConditionalGeneration.from_pretrained(src)
    lm = model.model.language_model
    g = torch.Generator().manual_seed(seed)
    unit = lambda v: v / v.norm()
    with torch.no_grad():
        for layer in lm.layers:
            layer.self_attn.o_proj.weight.mul_(layer_scale)
            layer.mlp.down_proj.weight.mul_(layer_scale)
        emb = lm.embed_tokens.weight
        (newline,) = tok.encode("\n")
        letters = [tok.encode(c)[0] for c in "ABCD"]
        head = model.lm_head.weight
        head.zero_()
        e_nl = unit(emb[newline])
        for k in letters:
            r = torch.randn(emb.shape[1], generator=g)
            head[k] = big * (e_nl + unit(r - (r @ e_nl) * e_nl))
        head[tok.eos_token_id] = 2 * big * sum(unit(emb[k]) for k in letters)
    shutil.copytree(src, out)
    for f in out.glob("model*.safetensors*"):
        f.unlink()
    model.save_pretrained(out, max_shard_size="500KB")
    return out


TASK_YAML = """dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {parquet}
  video: True
  cache_dir: videomme
task: videomme_fixture
test_split: test
output_type: generate_until
doc_to_visual: !function utils.videomme_doc_to_visual
doc_to_text: !function utils.videomme_doc_to_text
doc_to_target: "answer"
generation_kwargs:
  max_new_tokens: 16
  temperature: 0
  top_p: 1.0
  num_beams: 1
  do_sample: false
process_results: !function utils.videomme_process_results
metric_list:
  - metric: videomme_perception_score
    aggregation: !function utils.videomme_aggregate_results
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: "\\nAnswer with the option's letter from the given choices directly."
metadata:
  - version: 0.0
"""


@pytest.fixture(scope="module")
def fixture_task(tmp_path_factory):
    """(HF_HOME holding the Video-MME fixture, task directory, letter-answering checkpoint)."""
    from replicate.benchmarks.fixtures import make_fixture
    from replicate.paper import rehearsal

    root = tmp_path_factory.mktemp("lmms_fixture")
    # 32-frame clips: the README's command samples frames=32; the cells below sample FRAMES of them
    data = make_fixture("videomme", root / "hf" / "videomme", N_SAMPLES, n_frames=32, size=32, parquet=True)
    tasks = root / "tasks" / "videomme_fixture"
    tasks.mkdir(parents=True)
    (tasks / "utils.py").write_text("from lmms_eval.tasks.videomme.utils import (videomme_aggregate_results, "
                                    "videomme_doc_to_text, videomme_doc_to_visual, videomme_process_results)\n")
    (tasks / "videomme_fixture.yaml").write_text(TASK_YAML.format(parquet=data / "videomme" / "test-00000-of-00001.parquet"))
    ckpt = letter_answering(rehearsal.write_llava_checkpoint(root / "random", seed=0), root / "letters")
    return root / "hf", root / "tasks", ckpt, data


def paper_tier_cell(ckpt: Path, data: Path, method: str, retention, out: Path):
    """The paper tier's shard and summary of one cell (answer mode generate, as lmms-eval)."""
    from replicate.paper.cells import Cell
    from replicate.paper.shard import run_shard, summarise_cell

    cell = Cell("llava-onevision-7b", "llava-onevision-7b", FRAMES, method, retention, (), "videomme", "videomme")
    config = {"paths": {"checkpoints": {"llava-onevision-7b": str(ckpt)}, "datasets": {"videomme": str(data)}},
              "paper": {"answer": "generate", "device": "cpu", "rehearsal": True, "max_new_tokens": 16}, "seeds": [0]}
    header = run_shard(cell, 0, 1, config, out / "shard.jsonl", progress=False)
    assert header["status"] == "ok", header
    from replicate.paper.shard import read_shard

    return header, read_shard(out / "shard.jsonl")[1], summarise_cell(cell, [out / "shard.jsonl"])


def model_args(ckpt: Path, header: dict) -> str:
    """--model_args for the options the paper tier applied to this checkpoint (scaled to its depth)."""
    args = [f"pretrained={ckpt}", f"frames={FRAMES}"]
    method = header["cell"]["method"]
    if method != "vanilla":
        args.append(f"method={method}")
        for k, v in header["options"]["applied"].items():
            args.append(f"{k}={list(v) if isinstance(v, tuple) else v}".replace(" ", ""))
    return ",".join(args)


def test_videoprune_is_registered_in_lmms_eval(lmms_python):
    code = ("from lmms_eval.models import get_model; from lmms_eval.api.model import lmms; "
            "cls = get_model('videoprune'); print(cls.__module__, cls.__name__, issubclass(cls, lmms))")
    proc = subprocess.run([str(lmms_python), "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-3:] == ["methods.lmms_eval_model", "VideoPrune", "True"]


@pytest.mark.parametrize("method,retention", CELLS)
def test_lmms_eval_accuracy_equals_the_paper_tier(lmms_python, fixture_task, tmp_path, method, retention):
    hf_home, tasks, ckpt, data = fixture_task
    header, records, summary = paper_tier_cell(ckpt, data, method, retention, tmp_path / "paper")
    out = tmp_path / "lmms"
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    cmd = [str(lmms_python), "-m", "lmms_eval", "eval", "--model", "videoprune", "--model_args",
           model_args(ckpt, header), "--tasks", "videomme_fixture", "--include_path", str(tasks),
           "--batch_size", "4", "--output_path", str(out), "--log_samples"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    results = json.loads(next(out.rglob("*_results.json")).read_text())
    lmms_acc = results["results"]["videomme_fixture"]["videomme_perception_score,none"]
    samples = [json.loads(line) for line in next(out.rglob("*_samples_videomme_fixture.jsonl")).read_text().splitlines()]
    # the same answer per question: lmms-eval's response vs the paper tier's text (special tokens removed)
    from transformers import AutoTokenizer

    specials = AutoTokenizer.from_pretrained(ckpt).all_special_tokens
    lmms_answers = {s["videomme_perception_score"]["question_id"]: s["filtered_resps"][0] for s in samples}
    paper_answers = {}
    for r in records:
        text = r["prediction"]
        for sp in specials:
            text = text.replace(sp, "")
        paper_answers[r["question_id"]] = text
    assert lmms_answers == paper_answers
    assert summary["status"] == "ok" and summary["n"] == N_SAMPLES == len(samples)
    assert lmms_acc == pytest.approx(summary["accuracy"], abs=1e-9)
    assert 0 < summary["accuracy"] < 100        # the letter-answering model gets some right, not all


def test_readme_lmms_eval_command(lmms_python, fixture_task, tmp_path):
    import re

    from replicate.paper import rehearsal

    hf_home, tasks, _, _ = fixture_task
    readme = (REPO / "README.md").read_text()
    (line,) = [l for l in readme.splitlines() if l.startswith("lmms-eval --model videoprune")]
    ckpt = rehearsal.write_llava_checkpoint(tmp_path / "llava-ov-28", seed=0, layers=28)
    line = line.replace("/data/llava-onevision-qwen2-7b-ov-hf", str(ckpt))
    line = line.replace("--tasks videomme", f"--tasks videomme_fixture --include_path {tasks}")
    assert not re.search(r"/data/", line), line
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": "", "PATH": f"{lmms_python.parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-ec", f"{line} --output_path {tmp_path / 'out'}"], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    results = json.loads(next((tmp_path / "out").rglob("*_results.json")).read_text())
    assert results["config"]["model"] == "videoprune" and "method=holitom" in results["config"]["model_args"]
    assert "videomme_perception_score,none" in results["results"]["videomme_fixture"]
