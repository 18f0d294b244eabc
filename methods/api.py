"""``methods.load``: a video LLM with a token-pruning method, in a few lines::

    import methods
    model = methods.load("/ckpt/llava-onevision-qwen2-7b-ov-hf", method="holitom", retention=0.10)
    answers = model.generate(["a.mp4", "b.mp4"], ["What happens?", "Who speaks?"], max_new_tokens=32)
    answers[0].text, answers[0].tokens_kept

``load`` takes a local HF checkpoint directory, or an HF model already in memory *with* its
processor or tokenizer; the family's adapter is picked from the model's ``model_type``
(LLaVA-OneVision / LLaVA-Video, Qwen2.5-VL, Molmo2), and the method is checked against the
families it supports before anything is attached. The method is attached to this one adapter
(:func:`methods.attach.apply_method`): the HF model object is never modified, other instances are
untouched, and ``remove()`` (or leaving a ``with`` block) detaches it.

``generate`` runs a batch: every request through :func:`methods.pipeline.run` up to its prefill,
then the decode steps of the batch together (:mod:`methods.generation`); it returns one
:class:`Answer` per request with the decoded text and the tokens kept at each stage.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from costmodel.schedule import TokenSchedule
from methods.attach import FAMILY_OF_MODEL_TYPE, adapter_family, apply_method, check_family

#: HF ``model_type`` -> (module, adapter class) of that family
ADAPTERS = {"llava_onevision": ("methods.adapters.llava_onevision", "LlavaOnevisionAdapter"),
            "qwen2_5_vl": ("methods.adapters.qwen2_5_vl", "Qwen2_5_VLAdapter"),
            "molmo2": ("methods.adapters.molmo2", "Molmo2VideoAdapter")}
#: methods whose saliency is the SigLIP MAP-head probe attention (``map_head_attn``: methods/tango.py
#: SALIENCY_SIGNALS[0], methods/baselines/fastvid.py SALIENCY; a test holds this equal)
MAP_HEAD_METHODS = ("tango", "fastvid")
SO400M_HIDDEN = 1152
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


@dataclass(frozen=True)
class TokenCounts:
    """Tokens at each stage of one request, as it ran (``Answer.schedule`` has every layer)."""

    unpruned: int            # visual tokens an unpruned run feeds the LLM (frames x tokens per frame)
    vision_first: int        # tokens in the vision tower's first block (in-ViT pruning: after it, fewer)
    vision_last: int         # tokens in the vision tower's last block run
    llm_input: int           # visual tokens entering the LLM (after any pre-LLM reduction)
    llm_output: int          # visual tokens in the LLM's last layer (after any inner-LLM pruning)
    newline: int             # newline tokens entering the LLM
    text: int                # prompt text tokens
    generated: int           # tokens generated

    @classmethod
    def of(cls, schedule: TokenSchedule, unpruned: int, generated: int) -> "TokenCounts":
        vis = schedule.vision
        return cls(unpruned=unpruned, vision_first=vis[0].total if vis else 0, vision_last=vis[-1].total if vis else 0,
                   llm_input=schedule.llm_visual[0], llm_output=schedule.llm_visual[-1],
                   newline=schedule.llm_newline[0], text=schedule.text_tokens, generated=generated)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Answer:
    """One request's output: decoded text, generated ids (with the end-of-sequence id when one came),
    tokens kept per stage, the TokenSchedule it ran and its seconds per stage (``decode``: the
    batch's decode steps, shared by the batch's requests)."""

    text: str
    tokens: list[int]
    tokens_kept: TokenCounts
    schedule: TokenSchedule
    seconds: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text


# ----------------------------------------------------------------------------------------- loading
def load(model, method=None, retention: Optional[float] = None, *, processor=None, tokenizer=None,
         setting: Optional[str] = None, frames: int = 32, device=None, dtype=None, map_head=None,
         adapter_options: Optional[dict] = None, **options) -> "PrunedVideoLLM":
    """A video LLM with ``method`` attached, ready to ``generate``.

    ``model``: a local HF checkpoint directory (config.json, weights and tokenizer files), an HF
    model instance (then ``processor`` or ``tokenizer`` is required), or an adapter
    (``methods.adapters``). ``method``: a registered name (``python -m methods`` lists them), a
    Method, or None (the unpruned model); ``retention`` and ``**options`` configure it. ``setting``
    (LLaVA family): ``llava-onevision`` (default) or ``llava-video``. ``frames``: frames sampled from
    a video file. ``device`` / ``dtype``: where a checkpoint directory is loaded (default cpu /
    float32; bfloat16 on cuda). ``map_head``: the SigLIP MAP head for Tango / FastVID on LLaVA
    checkpoints, which do not carry it. ``adapter_options``: further keyword arguments of the
    family's adapter (e.g. Qwen2.5-VL's ``image_size``)."""
    _check_frames(frames)
    adapter_options = dict(adapter_options or {})
    if setting is not None:
        adapter_options["setting"] = setting
    _check_method(method, retention, options)  # before any checkpoint is read
    adapter, source = _adapter(model, processor, tokenizer, device, dtype, adapter_options)
    family = adapter_family(adapter)
    if isinstance(method, str):
        check_family(method, family)
    method_obj = _method(method, retention, options, adapter)
    if method_obj is not None:
        check_family(method_obj, family)
        _prepare_method(adapter, method_obj, family, map_head, source)
    handle = apply_method(adapter, method_obj) if method_obj is not None else None
    return PrunedVideoLLM(adapter, handle, family, frames)


def _check_frames(frames) -> None:
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an int >= 1, got {frames!r}")


def _check_method(method, retention, options) -> None:
    """Refuse a bad method name, unknown options or a misplaced retention before anything loads."""
    from methods.base import Method
    from methods.registry import method_class

    if method is None:
        if retention is not None or options:
            raise ValueError(f"retention / options {sorted(options)} were given without a method")
        return
    if isinstance(method, Method):
        if retention is not None or options:
            raise ValueError("retention and options configure a method given by name; this Method is configured")
        return
    if not isinstance(method, str):
        raise ValueError(f"method must be a registered name, a Method or None, got {type(method).__name__}")
    allowed = method_class(method).options()
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for method {method!r}; allowed: {sorted(allowed) or 'none'}")


def _method(method, retention, options, adapter):
    """The Method to attach (None: the unpruned model). A name is configured by the method itself
    (``Method.from_setting``) for this model: ``retention`` becomes its kept-fraction option, the
    options the papers state for the model's layout apply, and layer options are read in the
    papers' notation of a 28-layer LLM and scaled to this model's depth, as every tier of the
    workflow does (on the 28-layer 7B models K = 18 is layer 18)."""
    if method is None or not isinstance(method, str):
        return method
    from methods.registry import method_class
    from methods.setting import PaperSetting

    setting = PaperSetting.for_adapter(adapter, retention, options)
    return method_class(method).from_setting(setting).build()


def _adapter(model, processor, tokenizer, device, dtype, adapter_options) -> tuple[Any, Optional[Path]]:
    """(adapter, checkpoint directory or None) for what ``load`` was given."""
    if isinstance(model, (str, Path)):
        return _from_directory(Path(model), tokenizer, device, dtype, adapter_options), Path(model)
    if device is not None or dtype is not None:
        raise ValueError("device / dtype apply to a checkpoint directory; an in-memory model is used where it is "
                         "(move it first: model.to(device, dtype))")
    if isinstance(model, torch.nn.Module):
        return _from_model(model, processor, tokenizer, adapter_options), None
    if hasattr(model, "encode_video") and hasattr(getattr(model, "model", None), "config"):  # an adapter
        if processor is not None or tokenizer is not None or adapter_options:
            raise ValueError("an adapter carries its own tokenizer and settings; pass processor / tokenizer / "
                             "setting / adapter_options only with a checkpoint directory or an HF model")
        _family_of(model.model.config, type(model).__name__)
        return model, None
    raise TypeError(f"load needs a checkpoint directory, an HF model or an adapter, got {type(model).__name__}")


def _family_of(config, what: str) -> str:
    model_type = getattr(config, "model_type", None) if not isinstance(config, dict) else config.get("model_type")
    if model_type not in ADAPTERS:
        raise ValueError(f"{what} has model_type {model_type!r}, which no adapter supports; supported: "
                         + ", ".join(f"{t} ({FAMILY_OF_MODEL_TYPE[t]})" for t in ADAPTERS))
    return model_type


def _adapter_class(model_type: str):
    import importlib

    module, name = ADAPTERS[model_type]
    return getattr(importlib.import_module(module), name)


def _torch_dtype(dtype, device: str):
    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not supported; allowed: {', '.join(DTYPES)} or a torch.dtype")
    return DTYPES[dtype]


def _from_directory(path: Path, tokenizer, device, dtype, adapter_options):
    """Load a local checkpoint directory; bad directories fail before any weight is read."""
    if not path.is_dir():
        raise ValueError(f"checkpoint directory {str(path)!r} does not exist (expected a local HF checkpoint: "
                         f"config.json, *.safetensors and tokenizer files)")
    cfg_file = path / "config.json"
    try:
        config = json.loads(cfg_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{str(cfg_file)!r} is missing or not JSON ({exc}); expected an HF checkpoint") from exc
    model_type = _family_of(config, f"checkpoint {str(path)!r}")
    if tokenizer is None and not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise ValueError(f"checkpoint {str(path)!r} has no tokenizer files ({', '.join(TOKENIZER_FILES)}): save the "
                         f"tokenizer beside the weights (tokenizer.save_pretrained(dir)) or pass tokenizer=")
    device = str(device or "cpu")
    cls = _adapter_class(model_type)
    try:
        adapter = cls.from_pretrained(path, dtype=_torch_dtype(dtype, device), device=device, **adapter_options)
    except (OSError, RuntimeError) as exc:  # missing / truncated weights, shapes that do not fit the config
        raise ValueError(f"cannot load checkpoint {str(path)!r}: {' '.join(str(exc).split())[:500]}") from exc
    except Exception as exc:  # safetensors' own error type (a corrupt file) is not an OSError
        if type(exc).__name__ != "SafetensorError":
            raise
        raise ValueError(f"cannot load checkpoint {str(path)!r}: corrupt safetensors file ({exc})") from exc
    if tokenizer is not None:
        adapter.tokenizer = tokenizer
    return adapter


def _from_model(model, processor, tokenizer, adapter_options):
    """An adapter around the user's HF model (left as it is: nothing is set on it)."""
    model_type = _family_of(getattr(model, "config", None), f"model {type(model).__name__}")
    if tokenizer is None:
        tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None:
        raise ValueError(f"an HF model needs its tokenizer: pass processor=AutoProcessor.from_pretrained(<dir>) or "
                         f"tokenizer=AutoTokenizer.from_pretrained(<dir>) (the checkpoint's own; a {type(model).__name__} "
                         f"has none)")
    if getattr(model, "training", False):
        warnings.warn("the model is in training mode (dropout active): call model.eval() for deterministic answers",
                      RuntimeWarning, stacklevel=3)
    mean_std = _processor_mean_std(processor)
    return _adapter_class(model_type)(model, tokenizer=tokenizer, **mean_std, **adapter_options)


def _processor_mean_std(processor) -> dict:
    """image_mean / image_std of an HF processor's video (else image) processor, when it has them."""
    for part in ("video_processor", "image_processor"):
        sub = getattr(processor, part, None)
        if getattr(sub, "image_mean", None) is not None and getattr(sub, "image_std", None) is not None:
            return {"image_mean": tuple(sub.image_mean), "image_std": tuple(sub.image_std)}
    return {}


def _prepare_method(adapter, method, family: str, map_head, source: Optional[Path]) -> None:
    """What a method needs from the checkpoint: STTS's trained scorer, Tango's / FastVID's MAP head."""
    from methods.stts_method import STTS

    if isinstance(method, STTS) and method.config.prune_method == "scorer" and method.config.scorer_checkpoint is None:
        state = adapter.stts_scorer_state() if hasattr(adapter, "stts_scorer_state") else None
        if state is not None:
            scorer = method.scorer(adapter)
            scorer.load_state_dict(state, strict=True)
            method.set_scorer(scorer.eval())
        else:
            warnings.warn(f"{method.name}: {source or 'the model'} carries no trained STTS scorer; a random-init "
                          f"scorer runs (right for timing and token counts, meaningless for accuracy): pass "
                          f"scorer_checkpoint=", RuntimeWarning, stacklevel=3)
    if method.name in MAP_HEAD_METHODS and family in ("llava-onevision", "llava-video"):
        _attach_map_head(adapter, method.name, map_head)
    elif map_head is not None:
        raise ValueError(f"map_head is used by {', '.join(MAP_HEAD_METHODS)} on the LLaVA family only, not by "
                         f"{method.name!r} on {family}")


def _attach_map_head(adapter, name: str, map_head) -> None:
    tower = adapter.model.model.vision_tower
    if getattr(tower, "use_head", False):
        return
    if map_head is not None:
        adapter.set_map_head(map_head)
        return
    hidden = int(adapter.vision_config.hidden_size)
    message = (f"method {name!r} takes its saliency from the SigLIP MAP head, which HF LLaVA checkpoints do not "
               f"carry: pass map_head= (the head of google/siglip-so400m-patch14-384, e.g. "
               f"SiglipVisionModel.from_pretrained(dir, vision_use_head=True).vision_model.head)")
    if hidden == SO400M_HIDDEN:
        raise ValueError(message)
    warnings.warn(message + f"; this tiny tower (hidden {hidden}) gets a seeded random head, not SigLIP's saliency",
                  RuntimeWarning, stacklevel=4)


# ----------------------------------------------------------------------------------------- the model
class PrunedVideoLLM:
    """A video LLM with a method attached (or none); ``generate`` answers a batch of questions."""

    def __init__(self, adapter, handle, family: str, frames: int = 32):
        self.adapter = adapter
        self.family = family
        self.frames = frames
        self._handle = handle

    @property
    def model(self):
        """The HF model (never modified)."""
        return self.adapter.model

    @property
    def tokenizer(self):
        return self.adapter.tokenizer

    @property
    def method(self):
        """The attached Method, or None."""
        return self.adapter.method

    def remove(self) -> None:
        """Detach the method; ``generate`` then runs the unpruned model."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def __enter__(self) -> "PrunedVideoLLM":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        return (f"PrunedVideoLLM(family={self.family!r}, model={type(self.model).__name__}, "
                f"method={self.method!r}, frames={self.frames})")

    def generate(self, videos, questions, *, frames: Optional[int] = None, batch_size: int = 8,
                 progress: bool = False, **generation_kwargs) -> list[Answer]:
        """Answer ``questions[i]`` about ``videos[i]``, ``batch_size`` requests at a time.

        A video is a file path (``frames`` sampled uniformly, default the model's), a
        ``methods.video_io.VideoClip``, normalised frames (F, 3, S, S) float, or raw frames
        (F, H, W, 3) uint8. ``generation_kwargs``: HF's ``max_new_tokens`` (16), ``do_sample``,
        ``temperature``, ``top_p``, ``top_k``, ``num_beams`` (1 only), ``eos_token_id``, and
        ``seed``. One video and one question (not lists) give a list of one Answer."""
        from methods.generation import GenerationConfig

        config = GenerationConfig.from_kwargs(**generation_kwargs)
        videos, questions = _as_batch(videos, questions)
        frames = self.frames if frames is None else frames
        _check_frames(frames)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        for i, v in enumerate(videos):
            _check_video(v, i, self.adapter)
        generator = None
        if config.do_sample:
            generator = torch.Generator(device=self.adapter.device)
            generator.manual_seed(config.seed if config.seed is not None else torch.seed())
        answers: list[Answer] = []
        from tqdm.auto import tqdm

        for lo in tqdm(range(0, len(videos), batch_size), disable=not progress, desc="generate", unit="batch"):
            clips = [_clip(self.adapter, v, frames) for v in videos[lo:lo + batch_size]]
            answers += self._batch(clips, questions[lo:lo + batch_size], config, generator)
        return answers

    def _batch(self, clips, questions, config, generator) -> list[Answer]:
        from methods.generation import decode_batch
        from methods.pipeline import StageTimer, run

        results, seconds = [], []
        for clip, question in zip(clips, questions):
            timer = StageTimer(self.adapter.device)
            results.append(run(self.adapter, None, clip.pixel_values, question, timestamps=clip.timestamps,
                               duration=clip.duration, decode_steps=0, timer=timer))
            seconds.append({k: v for k, v in timer.seconds().items() if k != "decode"})
        first = torch.stack([r.logits for r in results])
        tokens, decode_s = decode_batch(self.adapter, [r.prefill for r in results], first, config, generator)
        return [self._answer(r, toks, {**s, "decode": decode_s}) for r, toks, s in zip(results, tokens, seconds)]

    def _answer(self, result, tokens: list[int], seconds: dict) -> Answer:
        schedule = replace(result.schedule, decode_steps=len(tokens) - 1)
        unpruned = schedule.frames * int(self.adapter.tokens_per_frame)
        return Answer(text=_decode(self.adapter.tokenizer, tokens), tokens=tokens,
                      tokens_kept=TokenCounts.of(schedule, unpruned, len(tokens)), schedule=schedule,
                      seconds=seconds)


# ----------------------------------------------------------------------------------------- inputs
@dataclass
class _Clip:
    pixel_values: torch.Tensor
    timestamps: Optional[torch.Tensor] = None
    duration: Optional[float] = None


def _is_one_video(v) -> bool:
    import numpy as np

    return isinstance(v, (str, Path, torch.Tensor, np.ndarray)) or hasattr(v, "pixel_values")


def _as_batch(videos, questions) -> tuple[list, list[str]]:
    if isinstance(questions, str):
        if not _is_one_video(videos):
            raise ValueError("one question (a str) goes with one video; for a batch pass a list of questions")
        videos, questions = [videos], [questions]
    if _is_one_video(videos):
        raise ValueError("videos must be a list (one per question) when questions is a list")
    videos, questions = list(videos), list(questions)
    if len(videos) != len(questions):
        raise ValueError(f"{len(videos)} videos but {len(questions)} questions: give one question per video")
    if not videos:
        raise ValueError("empty batch: give at least one video and one question")
    bad = [i for i, q in enumerate(questions) if not isinstance(q, str) or not q.strip()]
    if bad:
        raise ValueError(f"questions must be non-empty strings; not at index {bad[:5]}")
    return videos, questions


def _check_video(video, index: int, adapter) -> None:
    """A video the adapter can take; paths are checked to exist (decoding comes per batch)."""
    if isinstance(video, (str, Path)):
        if not Path(video).is_file():
            raise ValueError(f"video {index}: file {str(video)!r} does not exist")
        return
    if hasattr(video, "pixel_values"):
        video = video.pixel_values
    video = _as_tensor(video)
    if not isinstance(video, torch.Tensor):
        raise ValueError(f"video {index}: expected a file path, a VideoClip or a frames tensor, got {type(video).__name__}")
    size = int(adapter.image_size)
    float_ok = video.is_floating_point() and video.dim() == 4 and tuple(video.shape[1:]) == (3, size, size)
    raw_ok = video.dtype == torch.uint8 and video.dim() == 4 and video.shape[-1] == 3
    if not (float_ok or raw_ok):
        raise ValueError(f"video {index}: frames of shape {tuple(video.shape)} and dtype {video.dtype}; expected "
                         f"normalised float (F, 3, {size}, {size}) or raw uint8 (F, H, W, 3)")


def _clip(adapter, video, frames: int):
    if isinstance(video, (str, Path)):
        return adapter.load_video(str(video), frames)
    if hasattr(video, "pixel_values"):
        return video
    video = _as_tensor(video)
    if video.dtype == torch.uint8:
        from methods.video_io import preprocess

        video = preprocess(video.cpu().numpy(), int(adapter.image_size), adapter.image_mean, adapter.image_std)
    return _Clip(video)


def _as_tensor(video):
    import numpy as np

    return torch.from_numpy(video) if isinstance(video, np.ndarray) else video


def _decode(tokenizer, tokens: Sequence[int]) -> str:
    try:
        return tokenizer.decode(list(tokens), skip_special_tokens=True)
    except TypeError:  # the byte-level test tokenizer takes no options
        return tokenizer.decode(list(tokens))
