"""The lmms-eval model ``videoprune``: any task, any method, any supported checkpoint::

    pip install -e ".[lmms]"
    lmms-eval --model videoprune \\
        --model_args pretrained=/ckpt/llava-onevision-qwen2-7b-ov-hf,method=holitom,retention=0.1,frames=32 \\
        --tasks videomme --batch_size 4

Registered the way lmms-eval (0.7.x) loads external models: an entry point in the group
``lmms_eval.models`` (pyproject.toml) whose :func:`manifest` returns lmms-eval's ``ModelManifest``
naming :data:`VideoPrune` here (``lmms_eval/models/registry_v2.py``,
``ModelRegistryV2.load_entrypoint_manifests``). ``--model_args``: ``pretrained`` (a local
checkpoint directory), ``method``, ``retention``, ``frames`` (default 32), ``setting``
(``llava-video`` for LLaVA-Video checkpoints), ``dtype``, ``max_new_tokens`` (when a task sets
none; default 1024), and every other key is an option of the method (``inner_k=18``; lists as
``layers=[8,16,24]``). ``--device`` and ``--batch_size`` are lmms-eval's own.

It implements ``generate_until`` through :func:`methods.load` / ``generate`` (batched; the task's
``until`` strings cut the text, ``temperature: 0`` is greedy as in lmms-eval's own models); tasks
that need ``loglikelihood`` or multi-round generation get an error naming what is supported.

:class:`VideoPruneCore` holds all of it without lmms-eval (tested in the main suite); ``VideoPrune``
is that class on lmms-eval's ``lmms`` base, built when lmms-eval asks for it, so this module imports
without lmms-eval installed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

MODEL_ID = "videoprune"
#: generation keys of lmms-eval tasks that map onto ``PrunedVideoLLM.generate``
TASK_GENERATION_KEYS = ("until", "max_new_tokens", "temperature", "top_p", "top_k", "num_beams", "do_sample")


def manifest():
    """lmms-eval's model manifest of ``videoprune`` (the ``lmms_eval.models`` entry point)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.VideoPrune")


def generation_kwargs(task_kwargs: dict, default_max_new_tokens: int) -> tuple[dict, list[str]]:
    """(``generate`` keyword arguments, stop strings) from a task's generation_kwargs."""
    kw = dict(task_kwargs or {})
    until = kw.pop("until", None)
    until = [until] if isinstance(until, str) else list(until or [])
    out: dict[str, Any] = {"max_new_tokens": int(kw.get("max_new_tokens") or default_max_new_tokens)}
    temperature = kw.get("temperature")
    sample = kw.get("do_sample")
    if sample is None:
        sample = bool(temperature) and float(temperature) > 0
    if sample:
        out.update(do_sample=True, temperature=float(temperature or 1.0))
        for key in ("top_p", "top_k"):
            if kw.get(key) is not None:
                out[key] = kw[key]
    if kw.get("num_beams") not in (None, 1):
        out["num_beams"] = kw["num_beams"]            # refused by GenerationConfig, naming what is supported
    return out, [s for s in until if s]


def cut_at(text: str, stops: list[str]) -> str:
    """``text`` up to the first stop string (lmms-eval's ``until``)."""
    for s in stops:
        text = text.split(s)[0]
    return text


class VideoPruneCore:
    """``videoprune`` without lmms-eval's base class (see the module docstring)."""

    def __init__(self, pretrained: str, method: Optional[str] = None, retention: Optional[float] = None,
                 frames: int = 32, setting: Optional[str] = None, device: Optional[str] = None,
                 dtype: Optional[str] = None, batch_size: Any = 1, max_new_tokens: int = 1024,
                 max_batch_size: Any = None, **method_options):  # max_batch_size: lmms-eval's (unused)
        import methods
        from methods.predict import option_value

        super().__init__()
        if not pretrained or not Path(str(pretrained)).is_dir():
            raise ValueError(f"videoprune: pretrained={pretrained!r} is not a local checkpoint directory")
        options = {k: option_value(v) if isinstance(v, str) else v for k, v in method_options.items()}
        if isinstance(method, str) and method.lower() in ("", "none"):
            method = None
        self.batch_size_per_gpu = _batch_size(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.model = methods.load(str(pretrained), method, retention, frames=int(frames), setting=setting,
                                  device=device or "cpu", dtype=dtype, **options)
        self.task_dict = getattr(self, "task_dict", {})

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    def generate_until(self, requests) -> list[str]:
        """One answer per request (``Instance.args``: context, generation kwargs, doc_to_visual,
        doc_id, task, split), in the order given; requests with the same generation kwargs run in
        batches of ``batch_size``."""
        from tqdm.auto import tqdm

        args = [r.args for r in requests]
        out: list[Optional[str]] = [None] * len(args)
        pbar = tqdm(total=len(args), desc="videoprune", disable=getattr(self, "rank", 0) != 0)
        for idx_group in _groups(args, self.batch_size):
            gen, stops = generation_kwargs(args[idx_group[0]][1], self.max_new_tokens)
            videos = [self._video(*args[i][2:6]) for i in idx_group]
            contexts = [args[i][0] for i in idx_group]
            answers = self.model.generate(videos, contexts, batch_size=len(idx_group), **gen)
            for i, a in zip(idx_group, answers):
                out[i] = cut_at(a.text, stops)
                hook = getattr(self, "cache_hook", None)
                if hook is not None:
                    hook.add_partial("generate_until", (args[i][0], args[i][1]), out[i])
            pbar.update(len(idx_group))
        pbar.close()
        return out

    def _video(self, doc_to_visual, doc_id, task, split) -> str:
        visuals = doc_to_visual(self.task_dict[task][split][doc_id])
        visuals = [v for v in (visuals or []) if v is not None]
        if len(visuals) != 1 or not isinstance(visuals[0], (str, Path)):
            kinds = ", ".join(type(v).__name__ for v in visuals) or "nothing"
            raise ValueError(f"videoprune answers about one video file per document; task {task!r} gave {kinds}")
        return str(visuals[0])

    def loglikelihood(self, requests):
        raise NotImplementedError("videoprune implements generate_until only (output_type: generate_until); "
                                  "this task asks for loglikelihood")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("videoprune implements generate_until only; this task asks for multi-round "
                                  "generation")


def _batch_size(value) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"videoprune: batch_size must be an int >= 1 (auto is not supported), got {value!r}")
    return value


def _groups(args: list, size: int) -> list[list[int]]:
    """Indices of consecutive requests with equal generation kwargs, in chunks of ``size``."""
    groups: list[list[int]] = []
    for i, a in enumerate(args):
        if groups and len(groups[-1]) < size and args[groups[-1][0]][1] == a[1]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _build_lmms_class():
    import types

    from lmms_eval.api.model import lmms

    cls = types.new_class("VideoPrune", (VideoPruneCore, lmms), {},
                          lambda ns: ns.update({"__module__": __name__, "is_simple": True,
                                                "__doc__": VideoPruneCore.__doc__}))
    return cls


def __getattr__(name: str):
    if name == "VideoPrune":   # lmms-eval's registry imports this module and asks for the class
        cls = globals().get("_VideoPrune") or _build_lmms_class()
        globals()["_VideoPrune"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
