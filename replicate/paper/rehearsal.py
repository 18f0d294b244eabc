"""Rehearsal of the paper tier: everything a real run needs, in miniature, inside one directory.

    python -m replicate.paper.rehearsal make DIR      checkpoints + benchmarks + DIR/config.yaml
    python -m replicate.paper.rehearsal run DIR       make, then Snakemake (profiles/rehearsal) in DIR/work

``make`` writes, under DIR:

- ``checkpoints/<name>/``: a tiny random-weight LLaVA-OneVision per checkpoint the selected paper
  claims name, in the HF on-disk layout (config.json, sharded model-*.safetensors + index,
  generation_config.json, tokenizer.json / tokenizer_config.json / special_tokens_map.json (a
  byte-level tokenizer built here), preprocessor_config.json, processor_config.json,
  chat_template.json); ``checkpoints/siglip-so400m/``: a tiny SigLIP (config.json with
  model_type siglip + model.safetensors holding the MAP head), so the head-loading path runs.
  The Molmo2 checkpoints are tiny random-weight Molmo2 (``methods.adapters.molmo2``: 9x9 patches,
  3x3 pooled tokens per frame, 8 ViT blocks) in the same layout (config.json, sharded safetensors +
  index, tokenizer files, preprocessor_config.json, chat_template.json); the STTS ones
  (``molmo2-4b-lite-50`` / ``-lite-30``) carry an STTS scorer in their safetensors where the released
  Lite checkpoints carry theirs (``molmo2_loading.STTS_SCORER_PREFIX``; random weights here, seeded).
  ``molmo2-4b-stts-80-local`` is not written: no 80 % checkpoint was released, so its key stays
  empty and its claim says ``not-run`` naming it, as on a real box until one is trained.
- ``datasets/<benchmark>/``: each benchmark in its real layout (replicate.benchmarks.fixtures;
  Video-MME as the HF parquet, LVBench as its official video_info.meta.jsonl), clips encoded with
  PyAV with enough frames for the claims' frame counts (the most any selected claim uses);
  ``datasets/stts-13tasks/<benchmark>`` links to the suite's members.
- ``config.yaml``: ``paths.*`` pointing at those, ``paper.rehearsal: true``.

The Snakemake run uses the same rules as a real run; only the paths and the sizes differ. Its
claim files carry ``evidence.rehearsal`` and live under DIR/work, never in the repository's results.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

import yaml

REPO = Path(__file__).resolve().parents[2]
LLAVA_CHECKPOINTS = ("llava-onevision-7b", "llava-onevision-72b", "llava-video-7b")
#: released Molmo2 checkpoints -> STTS pruned fraction of the scorer they carry (None: the base model)
MOLMO_CHECKPOINTS = {"molmo2-4b": None, "molmo2-4b-lite-50": 0.5, "molmo2-4b-lite-30": 0.3}
BENCHMARK_DIRS = ("mvbench", "egoschema", "longvideobench", "videomme", "mlvu", "lvbench")
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>")
VOCAB = 1000
TARGETS = ("results/claims/all.json", "results/claims/REPORT.md")
IMAGE_SIZE = 84      # 6x6 SigLIP patches -> 3x3 pooled tokens per frame (the cpu tier's grid)
TINY_VISION = dict(model_type="siglip_vision_model", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                   num_attention_heads=4, patch_size=14, image_size=IMAGE_SIZE, vision_use_head=False)


def tiny_llava_config(seed_layers: int = 4) -> dict[str, Any]:
    return dict(
        vision_config=dict(TINY_VISION),
        text_config=dict(model_type="qwen2", hidden_size=128, intermediate_size=256, num_hidden_layers=seed_layers,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=VOCAB,
                         max_position_embeddings=8192),
        image_token_index=VOCAB - 2, video_token_index=VOCAB - 1,
        vision_feature_select_strategy="full", vision_feature_layer=-1)


def byte_tokenizer():
    """A byte-level BPE tokenizer (no merges: one token per byte) with Qwen's chat special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIALS))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>", "<image>", "<video>"])


def _write_processor_files(out: Path, processor_config: dict) -> None:
    """Tokenizer files, chat_template.json and processor_config.json of a checkpoint."""
    byte_tokenizer().save_pretrained(out)
    (out / "chat_template.json").write_text(json.dumps({"chat_template": (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")}, indent=1))
    (out / "processor_config.json").write_text(json.dumps(processor_config, indent=1))


def write_llava_checkpoint(out: Path, seed: int, layers: int = 4) -> Path:
    """``layers`` LLM layers (28: the 7B's depth, where the papers' layer options are valid as stated)."""
    from methods.adapters import LlavaOnevisionAdapter

    adapter = LlavaOnevisionAdapter.from_config(tiny_llava_config(layers), seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    adapter.model.save_pretrained(out, max_shard_size="500KB")  # sharded, with the index, like the hub copies
    (out / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "LlavaOnevisionImageProcessor", "processor_class": "LlavaOnevisionProcessor",
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_normalize": True, "do_rescale": True,
        "rescale_factor": 1 / 255, "resample": 3, "size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE}}, indent=1))
    _write_processor_files(out, {
        "processor_class": "LlavaOnevisionProcessor", "vision_feature_select_strategy": "full",
        "num_image_tokens": (IMAGE_SIZE // 14) ** 2, "video_token": "<video>", "image_token": "<image>"})
    return out


def write_molmo2_checkpoint(out: Path, seed: int, topk: float | None = None) -> Path:
    """A tiny random-weight Molmo2 in the HF layout; ``topk`` given: an STTS checkpoint carrying a
    (seeded, random) scorer for that pruned fraction, as Lite-30/50 carry their trained one."""
    from methods.adapters.molmo2 import Molmo2VideoAdapter
    from methods.stts_method import STTS, STTSMethodConfig

    adapter = Molmo2VideoAdapter.tiny(seed=seed, vocab_size=VOCAB)
    scorer = None if topk is None else STTS(STTSMethodConfig(topk=topk, seed=seed)).scorer(adapter)
    out.mkdir(parents=True, exist_ok=True)
    adapter.save_pretrained(out, scorer=scorer, max_shard_size="500KB")
    _write_processor_files(out, {"processor_class": "Molmo2Processor"})
    (out / "REHEARSAL.json").write_text(json.dumps({
        "checkpoint": out.name, "family": "molmo2", "weights": f"random, seed {seed}",
        "stts_scorer": None if topk is None else f"random-init STTS scorer for topk {topk}, seed {seed}"}, indent=1))
    return out


def write_qwen2_5_vl_checkpoint(out: Path, seed: int) -> Path:
    """A tiny random-weight Qwen2.5-VL (``methods.adapters.qwen2_5_vl``: 4-block tower, 2x2 merger;
    112-px frames give 4x4 merged tokens per temporal group) in the HF layout with tokenizer files.
    Not used by the paper claims (Tango's Qwen2.5-VL rows are reported, not rerun here); for the
    user entry points' tests and benchmark (``methods.load``)."""
    from methods.adapters import Qwen2_5_VLAdapter

    adapter = Qwen2_5_VLAdapter.tiny(seed=seed, vocab_size=VOCAB)
    out.mkdir(parents=True, exist_ok=True)
    adapter.save_pretrained(out)
    _write_processor_files(out, {"processor_class": "Qwen2_5_VLProcessor"})
    return out


def write_siglip_checkpoint(out: Path, seed: int = 0) -> Path:
    """Tiny SigLIP (text + vision, MAP head on) with the tower dimensions of the tiny LLaVA."""
    import torch
    from transformers import SiglipConfig, SiglipModel

    vision = {k: v for k, v in TINY_VISION.items() if k not in ("model_type", "vision_use_head")}
    cfg = SiglipConfig(text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, vocab_size=VOCAB, bos_token_id=1, eos_token_id=2,
                                        pad_token_id=0),
                       vision_config=vision)
    torch.manual_seed(seed)
    SiglipModel(cfg).save_pretrained(out)
    return out


def write_datasets(root: Path, n: int, frames: int) -> dict[str, str]:
    """Every benchmark in its layout; the suite directory links to them (its members' layout)."""
    from replicate.benchmarks.fixtures import make_fixture

    from .cells import DEFAULT_SUITES

    paths = {}
    suite = root / "stts-13tasks"
    suite.mkdir(parents=True, exist_ok=True)
    for name in BENCHMARK_DIRS:
        paths[name] = str(make_fixture(name, root / name, n, n_frames=frames, size=32, parquet=name == "videomme"))
        if name in DEFAULT_SUITES["stts-13tasks"]:
            (suite / name).symlink_to(Path("..") / name, target_is_directory=True)
    paths["stts-13tasks"] = str(suite)
    return paths


def needs(claims_selected: str | list[str]) -> tuple[set[str], int]:
    """(checkpoint names, most frames) the selected paper claims' cells use."""
    from replicate.claims import load_claims

    from . import cells as C

    config = {"paper": {"claims": claims_selected}, "holitom": {"frames_retention": 0.20}}
    cells = {c for claim in C.selected_claims(load_claims(), config) for c in C.claim_cells(claim, config)}
    return {c.checkpoint for c in cells}, max((c.frames for c in cells), default=32)


def make(directory: str | Path, *, n: int = 12, claims: str | list[str] = "all", shards: int = 2) -> Path:
    """Write checkpoints, datasets and DIR/config.yaml; returns the config path."""
    d = Path(directory).resolve()
    names, frames = needs(claims)
    ckpts = {}
    for i, name in enumerate(LLAVA_CHECKPOINTS):
        if name in names:
            ckpts[name] = str(write_llava_checkpoint(d / "checkpoints" / name, seed=i))
    for i, (name, topk) in enumerate(MOLMO_CHECKPOINTS.items()):
        if name in names:
            ckpts[name] = str(write_molmo2_checkpoint(d / "checkpoints" / name, seed=10 + i, topk=topk))
    ckpts["siglip-so400m"] = str(write_siglip_checkpoint(d / "checkpoints" / "siglip-so400m"))
    datasets = write_datasets(d / "datasets", n, frames)
    config = {"tiers": {"analytic": False, "cpu": False, "gpu": False, "paper": True},
              "paths": {"checkpoints": ckpts, "datasets": datasets},
              "paper": {"rehearsal": True, "claims": claims, "shards": shards, "answer": "option_logits",
                        "device": "cpu", "threads": 1, "mem_mb": 1500, "gpus": 0}}
    out = d / "config.yaml"
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def run(directory: str | Path, *, extra: Iterable[str] = (), timeout: int | None = None, **make_kw) -> subprocess.CompletedProcess:
    """make(), then Snakemake with profiles/rehearsal and DIR/config.yaml, working directory DIR/work."""
    cfg = make(directory, **make_kw)
    work = Path(directory).resolve() / "work"
    work.mkdir(parents=True, exist_ok=True)
    # targets and extra options first: --configfile takes every word after it
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *TARGETS, *extra,
           "--directory", str(work), "--profile", str(REPO / "profiles" / "rehearsal"), "--configfile", str(cfg)]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m replicate.paper.rehearsal", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["make", "run"])
    ap.add_argument("directory")
    ap.add_argument("--samples", type=int, default=12, help="questions per benchmark (default 12: with fewer, a random tiny model can score 0 on every one and perf-kept is undefined)")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--claims", nargs="*", default=None, help="paper claim ids (default: all)")
    args, rest = ap.parse_known_args(argv)
    kw = dict(n=args.samples, shards=args.shards, claims=args.claims or "all")
    if args.command == "make":
        print(make(args.directory, **kw))
        return 0
    proc = run(args.directory, extra=rest, **kw)
    sys.stdout.write(proc.stdout[-4000:])
    sys.stderr.write(proc.stderr[-8000:])
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
