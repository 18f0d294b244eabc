"""The STTS training loop (SFT objective of the paper's code: LM loss + ``aux_coef`` x auxiliary loss).

Why the LM loss reaches the scorer: block ``prune_at+1`` attends with the additive key bias
log(rescaled score) (``methods.stts.attention_bias``); the hard top-k after it passes no gradient,
so the bias is the scorer's only path from the answer loss. The auxiliary loss pulls each group's
score towards its temporal novelty 1 - cos(previous frame) at block ``prune_at``.

Two backbones:

- ``llava-ov`` (the cpu tier): the tiny LLaVA-OV trained on SynthVideoQA (``replicate.synthvqa``).
  STTS runs in its SigLIP tower (2x2 groups = its pooling cells); the LM loss is the cross-entropy
  of the answer letter at the answer position, the token the tiny model was trained on.
- ``molmo2``: an HF Molmo2 checkpoint at a local path (or ``tiny`` random weights) on local data
  (a JSONL of {"video", "question", "answer"}; ``synthetic`` makes random clips for smoke tests);
  the LM loss is the next-token cross-entropy over the answer tokens. Multi-GPU: launch with
  ``torchrun``; each rank takes every WORLD_SIZE-th sample and gradients are all-reduced.

Deterministic on CPU for a seed: the samples of step s depend only on (seed, s), so a run resumed
from ``checkpoint.pt`` ends with the same weights as an uninterrupted one (tested).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as Fn

from costmodel.cli import UsageError, check_number
from methods.stts_method import STTS, STTSMethodConfig, stts_losses
from methods.stts import STTS_FIDELITIES, TemporalTokenScorer, auxiliary_loss, novelty_targets
from replicate.io import write_text
from replicate.training import save_atomic, torch_threads, warmup_cosine_lr

BACKBONES = ("llava-ov", "molmo2")
MODES = ("scorer", "end-to-end")
#: the numbers of a run and what each may be (the CLI's argparse types and the config check share them)
INT_RANGES = {"prune_at": (0, 64), "steps": (1, 10 ** 7), "batch_size": (1, 65536), "seed": (0, 2 ** 63 - 1),
              "threads": (1, 1024), "save_every": (1, 10 ** 7), "log_every": (1, 10 ** 7),
              "n_train": (1, 10 ** 9), "frames": (1, 4096)}
#: (low, high, low open, high open): a negative grad_clip would make every update climb the loss
FLOAT_RANGES = {"topk": (0.0, 1.0, True, True), "aux_coef": (0.0, 1e6, False, False),
                "lr": (0.0, 10.0, True, False), "weight_decay": (0.0, 10.0, False, False),
                "grad_clip": (0.0, 1e6, True, False)}


class NonFiniteTraining(RuntimeError):
    """A step produced a NaN/inf loss, gradient norm or weight; nothing of it is saved."""


@dataclass(frozen=True)
class STTSTrainConfig:
    """One training run. ``topk`` is the pruned fraction the LLM side sees during training."""

    backbone: str = "llava-ov"
    model_dir: str = "results/cpu/model"   # or "tiny" (random Molmo2) for backbone molmo2
    data: str = "synthvqa"                      # llava-ov: synthvqa; molmo2: a JSONL path or "synthetic"
    mode: str = "scorer"
    topk: float = 0.5
    prune_at: Optional[int] = None              # None: 3, or 0 on a tower of <= 2 blocks
    aux_coef: float = 0.5
    steps: int = 150
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 1
    save_every: int = 50
    log_every: int = 10
    n_train: int = 2000                         # distinct SynthVideoQA-train samples cycled through
    frames: int = 4                             # molmo2 synthetic clips
    dtype: str = "fp32"
    fidelity: str = "released"                  # STTS's bias / count / packing rules (methods/stts.py)

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise UsageError(f"backbone {self.backbone!r} is not one of {list(BACKBONES)}")
        if self.mode not in MODES:
            raise UsageError(f"mode {self.mode!r} is not one of {list(MODES)}")
        if self.dtype not in ("fp32", "bf16"):
            raise UsageError(f"dtype must be 'fp32' or 'bf16', got {self.dtype!r}")
        for name, (lo, hi) in INT_RANGES.items():
            value = getattr(self, name)
            if value is None and name == "prune_at":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise UsageError(f"{name} must be a whole number in [{lo}, {hi}], got {value!r}")
        for name, bounds in FLOAT_RANGES.items():  # finite: a NaN passes every comparison
            check_number(getattr(self, name), *bounds[:2], lo_open=bounds[2], hi_open=bounds[3], what=name)
        if self.fidelity not in STTS_FIDELITIES:
            raise UsageError(f"fidelity must be one of {list(STTS_FIDELITIES)}, got {self.fidelity!r}")


def _atomic_json(obj, path: Path) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=str))


def load_scorer(path, dim: int, method_config: STTSMethodConfig, vision_config, group: int) -> TemporalTokenScorer:
    """A TemporalTokenScorer with the weights of a ``scorer.pt`` written by :func:`train`."""
    scorer = TemporalTokenScorer.from_config(dim, method_config.stts_config(vision_config, group=group))
    scorer.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return scorer


def default_prune_at(tower_blocks: int) -> int:
    """The paper's prune_at = 3, or the last block that still leaves a bias block after it."""
    return min(3, tower_blocks - 2)


class LlavaTask:
    """STTS on the cpu tier's tiny LLaVA-OV: answer-letter cross-entropy through the pruned tower."""

    def __init__(self, cfg: STTSTrainConfig):
        from replicate.synthvqa.data import make_split
        from replicate.synthvqa.tokenizer import letter_ids
        from replicate.harness.accuracy import load_checkpoint

        if cfg.data != "synthvqa":
            raise UsageError(f"backbone llava-ov trains on data 'synthvqa', got {cfg.data!r}")
        self.adapter, self.data_cfg = load_checkpoint(cfg.model_dir)
        self.model_dir = Path(cfg.model_dir)
        blocks = len(self.adapter.model.model.vision_tower.encoder.layers)
        prune_at = default_prune_at(blocks) if cfg.prune_at is None else cfg.prune_at
        self.method_config = STTSMethodConfig(topk=float(cfg.topk), prune_at=prune_at, aux_coef=cfg.aux_coef,
                                              seed=cfg.seed, fidelity=cfg.fidelity)
        self.scorer = STTS(self.method_config).scorer(self.adapter).train()
        self.samples = make_split("train", cfg.n_train, cfg.seed, self.data_cfg)
        self.letters = torch.tensor(letter_ids(self.adapter.tokenizer, 8))
        self.group = self.method_config.group_for(self.adapter)

    @property
    def model(self):
        return self.adapter.model

    def losses(self, sample) -> tuple[torch.Tensor, torch.Tensor, int]:
        from replicate.synthvqa.model import lm_hidden, preprocess_video
        from replicate.synthvqa.tokenizer import encode_prompt

        pix = preprocess_video(sample.video, self.adapter.image_size)
        out = stts_losses(self.adapter, pix, self.method_config, scorer=self.scorer)
        kept = out["kept_features"]
        m = self.model
        vis = torch.cat([kept, m.model.image_newline[None].to(kept.dtype)])
        ids = torch.tensor(encode_prompt(self.adapter.tokenizer, sample, vis.shape[0]))
        where = (ids == m.config.video_token_id).nonzero().squeeze(1)
        emb = m.get_input_embeddings()(ids)
        a, b = int(where[0]), int(where[-1]) + 1       # the placeholders are one contiguous run
        emb = torch.cat([emb[:a], vis.to(emb.dtype), emb[b:]])
        hidden = lm_hidden(m, emb[None])[0, -1]
        logits = m.lm_head(hidden)[self.letters[:len(sample.options)]].float()
        lm = Fn.cross_entropy(logits[None], torch.tensor([sample.answer_index]))
        return lm, out["aux_loss"], int(kept.shape[0])

    def save_model(self, out: Path) -> None:
        """End-to-end runs: the fine-tuned model as a SynthVideoQA checkpoint (HF layout)."""
        import shutil

        self.model.save_pretrained(str(out))
        self.adapter.tokenizer.save_pretrained(str(out))
        for f in ("synthvqa.json", "preprocessor_config.json"):
            src = self.model_dir / f
            if src.is_file():
                shutil.copy(src, out / f)


class Molmo2Task:
    """STTS on an HF Molmo2 (local path or ``tiny``): next-token cross-entropy over the answer."""

    def __init__(self, cfg: STTSTrainConfig):
        from methods.adapters.molmo2 import Molmo2VideoAdapter

        dtype = torch.bfloat16 if cfg.dtype == "bf16" else torch.float32
        device = "cuda" if torch.cuda.is_available() and cfg.model_dir != "tiny" else "cpu"
        if cfg.model_dir == "tiny":
            self.adapter = Molmo2VideoAdapter.tiny(seed=cfg.seed)
        else:
            self.adapter = Molmo2VideoAdapter.from_pretrained(cfg.model_dir, dtype=dtype, device=device)
        prune_at = default_prune_at(max(self.adapter.feature_blocks) + 1) if cfg.prune_at is None else cfg.prune_at
        self.method_config = STTSMethodConfig(topk=float(cfg.topk), prune_at=prune_at, aux_coef=cfg.aux_coef,
                                              seed=cfg.seed, fidelity=cfg.fidelity)
        self.scorer = STTS(self.method_config).scorer(self.adapter).train()
        self.group = self.method_config.group_for(self.adapter)
        self.samples = self._load_data(cfg)
        self.frames = cfg.frames

    @property
    def model(self):
        return self.adapter.model

    def _load_data(self, cfg: STTSTrainConfig) -> list:
        if cfg.data == "synthetic":
            return [("synthetic", i) for i in range(cfg.n_train)]
        path = Path(cfg.data)
        if not path.is_file():
            raise UsageError(f"molmo2 data {cfg.data!r}: expected 'synthetic' or a JSONL file of "
                             f'{{"video", "question", "answer"}} (not found)')
        rows = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}: line {i + 1} is not JSON ({exc.msg})") from None
            bad = [k for k in ("video", "question", "answer") if not isinstance(r, dict) or not isinstance(r.get(k), str)]
            if bad:
                raise UsageError(f"{path}: line {i + 1} lacks text field(s) {bad}; each line is "
                                 f'{{"video": path, "question": text, "answer": text}}')
            rows.append(r)
        if not rows:
            raise UsageError(f"{path}: no training record (an empty file trains on nothing)")
        return rows

    def _clip(self, sample) -> tuple[torch.Tensor, str, str]:
        if isinstance(sample, tuple):   # synthetic: a seeded random clip, half the frames static
            g = torch.Generator().manual_seed(sample[1])
            s = self.adapter.image_size
            base = torch.randn(1, 3, s, s, generator=g)
            move = (torch.arange(self.frames) >= self.frames // 2).float().view(-1, 1, 1, 1)
            pix = base + move * torch.randn(self.frames, 3, s, s, generator=g)
            return pix, "What changes?", "The second half."
        clip = self.adapter.load_video(sample["video"], self.frames)
        return clip.pixel_values, sample["question"], sample["answer"]

    def losses(self, sample) -> tuple[torch.Tensor, torch.Tensor, int]:
        from methods.adapters.molmo2 import answer_logits
        from methods.adapters.text import encode_text

        a = self.adapter
        pix, question, answer = self._clip(sample)
        c = self.method_config
        run = a.run_tower(pix.to(a.dtype), prune_at=c.prune_at, topk=float(c.topk), scorer=self.scorer,
                          keep_prune_hidden=True, fidelity=c.fidelity)
        F_, N, D = run.prune_hidden.shape
        h, w = a.tower_grid
        aux = auxiliary_loss(run.scores, novelty_targets(run.prune_hidden.reshape(F_, h, w, D), self.group))
        inputs = a.build_inputs(question, a.tokens_of(run))
        ans = torch.tensor(encode_text(a.tokenizer, answer + "<|im_end|>"), device=a.device)
        lm = Fn.cross_entropy(answer_logits(a, inputs, ans).float(), ans)
        return lm, aux.float(), int(run.group_keep.sum())

    def save_model(self, out: Path) -> None:
        """The fine-tuned Molmo2 with its scorer inside, as the released Lite checkpoints carry it
        (the paper tier loads it from there: ``replicate.paper.checkpoints.attach_stts_scorer``)."""
        self.adapter.save_pretrained(out, scorer=self.scorer)


def _trainable(task, mode: str) -> list:
    """Scorer alone (the model frozen) or scorer + every model weight (end to end)."""
    for p in task.model.parameters():
        p.requires_grad_(mode == "end-to-end")
    params = list(task.scorer.parameters())
    if mode == "end-to-end":
        task.model.train()
        params += [p for p in task.model.parameters()]
    return params


def _lr(step: int, cfg: STTSTrainConfig) -> float:
    """Linear warm-up over 5 % of the steps, cosine decay to 10 %."""
    return warmup_cosine_lr(step, cfg.steps, cfg.lr, max(1, cfg.steps // 20), 0.1)


def _batch(task, step: int, cfg: STTSTrainConfig, rank: int = 0, world: int = 1) -> list:
    """Samples of one step: a function of (seed, step) only, so resuming replays the same data."""
    n = len(task.samples)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))
    idx = [int(perm[(step * cfg.batch_size + j) % n]) for j in range(cfg.batch_size)]
    return [task.samples[i] for i in idx[rank::world]]


def _dist() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), world
    return 0, 1


def _all_reduce(params: list, world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= world


def check_finite_step(step: int, lm_sum: float, aux_sum: float, grad_norm) -> None:
    """Before the update: a NaN/inf loss or gradient would poison every weight it touches."""
    bad = [n for n, v in (("LM loss", lm_sum), ("auxiliary loss", aux_sum), ("gradient norm", float(grad_norm)))
           if not math.isfinite(v)]
    if bad:
        raise NonFiniteTraining(f"step {step}: the {' and the '.join(bad)} became non-finite ({lm_sum}, {aux_sum}, "
                                f"{float(grad_norm)}); training stopped before the update, nothing of this step "
                                f"was saved (lower --lr, check the data)")


def check_finite_weights(step: int, params: list) -> None:
    """After the update: no weight may be NaN/inf (a checkpoint or scorer with one is never written)."""
    finite = torch.stack([torch.isfinite(p).all() for p in params])  # one host sync for all tensors
    if not bool(finite.all()):
        i = int((~finite).nonzero()[0])
        raise NonFiniteTraining(f"step {step}: trainable tensor {i} {tuple(params[i].shape)} holds NaN/inf after the "
                                f"update; training stopped, nothing of this step was saved (lower --lr)")


def make_task(cfg: STTSTrainConfig):
    return LlavaTask(cfg) if cfg.backbone == "llava-ov" else Molmo2Task(cfg)


def _state(task, opt, step: int, history: list, seconds: float, mode: str) -> dict:
    st = {"step": step, "scorer": task.scorer.state_dict(), "optimizer": opt.state_dict(), "history": history,
          "seconds": seconds, "rng": torch.get_rng_state()}
    if mode == "end-to-end":
        st["model"] = task.model.state_dict()
    return st


def train(cfg: STTSTrainConfig, out, *, resume: bool = True, progress: bool = True, log=print,
          stop_after: Optional[int] = None, on_mismatch: str = "error") -> dict:
    """Train, checkpointing to ``out/checkpoint.pt``; writes ``out/scorer.pt`` and ``out/metrics.json``
    (and ``out/model`` end to end). Returns the metrics dict. ``stop_after`` ends this call after that
    many steps with a checkpoint and no final files (a time slice; the next call resumes).
    ``on_mismatch``: a checkpoint of another configuration raises (``error``) or is set aside as
    ``checkpoint.pt.stale`` and training starts over (``restart``, what the workflow uses)."""
    if on_mismatch not in ("error", "restart"):
        raise ValueError(f"on_mismatch must be 'error' or 'restart', got {on_mismatch!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with torch_threads(cfg.threads):
        return _train(cfg, out, resume, progress, log, stop_after, on_mismatch)


def _train(cfg: STTSTrainConfig, out: Path, resume: bool, progress: bool, log, stop_after, on_mismatch) -> dict:
    torch.manual_seed(cfg.seed)
    rank, world = _dist()
    task = make_task(cfg)
    params = _trainable(task, cfg.mode)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, history, seconds = 0, [], 0.0
    ck = out / "checkpoint.pt"
    st = torch.load(ck, map_location="cpu", weights_only=False) if resume and ck.is_file() else None
    if st is not None and st.get("config") != asdict(cfg):
        if on_mismatch == "error":
            raise UsageError(f"{ck} was written by a different configuration; delete it, use another --out "
                             f"or pass --restart-on-mismatch")
        os.replace(ck, ck.with_suffix(".pt.stale"))
        log(f"{ck} belongs to another configuration: moved to {ck.name}.stale, starting over")
        st = None
    if st is not None:
        task.scorer.load_state_dict(st["scorer"])
        if "model" in st:
            task.model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        torch.set_rng_state(st["rng"])
        start, history, seconds = st["step"], st["history"], st["seconds"]
        log(f"resumed from {ck} at step {start}")
    end = cfg.steps if stop_after is None else min(cfg.steps, start + int(stop_after))
    steps = range(start, end)
    if progress and rank == 0:
        from tqdm import tqdm

        steps = tqdm(steps, initial=start, total=cfg.steps, desc=f"stts {cfg.backbone} topk={cfg.topk}",
                     mininterval=2)
    t0 = time.perf_counter()
    for step in steps:
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg)
        opt.zero_grad(set_to_none=True)
        lm_sum = aux_sum = kept = 0.0
        batch = _batch(task, step, cfg, rank, world)
        for sample in batch:
            lm, aux, k = task.losses(sample)
            ((lm + cfg.aux_coef * aux) / cfg.batch_size).backward()
            lm_sum, aux_sum, kept = lm_sum + lm.item(), aux_sum + aux.item(), kept + k
        _all_reduce(params, world)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        check_finite_step(step + 1, lm_sum, aux_sum, grad_norm)
        opt.step()
        check_finite_weights(step + 1, params)
        n = max(1, len(batch))
        rec = {"step": step + 1, "lm_loss": lm_sum / n, "aux_loss": aux_sum / n,
               "loss": (lm_sum + cfg.aux_coef * aux_sum) / n, "kept_pooled": kept / n, "lr": _lr(step, cfg)}
        history.append(rec)
        if hasattr(steps, "set_postfix"):
            steps.set_postfix(lm=f"{rec['lm_loss']:.3f}", aux=f"{rec['aux_loss']:.4f}")
        if rank == 0 and ((step + 1) % cfg.save_every == 0 or step + 1 in (cfg.steps, end)):
            st = _state(task, opt, step + 1, history, seconds + time.perf_counter() - t0, cfg.mode)
            save_atomic({**st, "config": asdict(cfg)}, ck)
    seconds += time.perf_counter() - t0
    if end < cfg.steps:
        return {"steps": end, "complete": False, "train_seconds": seconds}
    return _finish(task, cfg, out, history, seconds, rank)


def _mean(xs: list) -> Optional[float]:
    return sum(xs) / len(xs) if xs else None


def _finish(task, cfg: STTSTrainConfig, out: Path, history: list, seconds: float, rank: int) -> dict:
    """scorer.pt, metrics.json (and the model end to end), written once training is complete."""
    tenth = max(1, len(history) // 10)
    metrics = {
        "config": asdict(cfg), "steps": len(history), "train_seconds": seconds,
        "seconds_per_step": seconds / max(1, len(history)), "threads": torch.get_num_threads(),
        "prune_at": task.method_config.prune_at, "group": task.group,
        "first_steps": {k: _mean([h[k] for h in history[:tenth]]) for k in ("lm_loss", "aux_loss", "loss")},
        "last_steps": {k: _mean([h[k] for h in history[-tenth:]]) for k in ("lm_loss", "aux_loss", "loss")},
        "history": [h for h in history if h["step"] % cfg.log_every == 0 or h["step"] in (1, len(history))],
        "scorer_file": "scorer.pt",
        "scorer_init": f"TemporalTokenScorer from seed {cfg.seed} (the untrained stts scorer of the same seed)",
    }
    if rank == 0:
        save_atomic(task.scorer.state_dict(), out / "scorer.pt")
        if cfg.mode == "end-to-end":
            task.save_model(out / "model")
            metrics["model_dir"] = "model"
        from replicate.provenance import provenance

        metrics["provenance"] = provenance(None, device=str(task.adapter.device), dtype=cfg.dtype, seed=cfg.seed,
                                           attn_implementation="sdpa", extra={"threads": torch.get_num_threads()})
        _atomic_json(metrics, out / "metrics.json")
    return metrics
