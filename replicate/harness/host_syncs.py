"""Counting the host syncs a request makes: the operations after which the CPU waits for the GPU.

A CUDA kernel launch returns at once; these do not. Each one stops the CPU from running ahead, so a
timed span that contains one measures launch latency as well as GPU work. They are counted at
the dispatcher, by what each operation needs, not by timing:

- ``item``: a device value read on the host (``.item()``, ``int()``, ``float()``, ``bool()``,
  ``.tolist()``: ``aten._local_scalar_dense``, ``aten.is_nonzero``, ``aten.equal``);
- ``data-dependent shape``: an output whose size depends on device values (``nonzero``,
  boolean-mask indexing, ``masked_select``, ``unique``, ``repeat_interleave`` by a tensor, ...);
- ``copy d2h`` / ``copy h2d``: a copy between the host and the device (a blocking H2D copy from
  pageable memory waits for the stream too); ``non_blocking`` copies are listed apart, not counted;
- ``tensor(data)``: ``torch.tensor`` / ``as_tensor`` of host data straight onto the device (a
  blocking H2D copy the dispatcher never shows, caught at the torch-function level).

Only operations on non-CPU tensors count (a CPU tensor's value is already on the host). On a CPU
machine, :mod:`replicate.harness.device_emulation` puts the model on an emulated device so the same
count can be taken there (tested). ``HostSyncCounter`` is an observer: it changes no result.

Stages: :meth:`HostSyncCounter.timer` returns a :class:`methods.pipeline.StageTimer`-compatible
observer, so ``pipeline.run(..., timer=counter.timer())`` files each sync under the stage
(encode, reduce, build_inputs, prefill, decode) in which it happened.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Optional

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

aten = torch.ops.aten

_ITEM = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.equal.default}
_SHAPE = {aten.nonzero.default, aten.masked_select.default, aten._unique2.default, aten.unique_dim.default,
          aten.unique_consecutive.default, aten._unique.default, aten.repeat_interleave.Tensor,
          aten.bincount.default, aten.argwhere.default}
_INDEX = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}
_COPIES = {aten._to_copy.default, aten.copy_.default}
_FACTORIES = {torch.tensor, torch.as_tensor, torch.asarray}


_REPO = Path(__file__).resolve().parents[2]
_SKIP = (str(Path(__file__).resolve()), str(_REPO / "replicate" / "harness" / "device_emulation.py"))


def _caller() -> str:
    """``path:line`` of the innermost frame in this repository's code (methods/, replicate/) that led
    to the operation, or of the first frame outside torch."""
    frame, fallback = sys._getframe(2), None
    while frame is not None:
        f = frame.f_code.co_filename
        if f.startswith(str(_REPO)) and f not in _SKIP and "/site-packages/" not in f:
            return f"{Path(f).relative_to(_REPO)}:{frame.f_lineno}"
        if fallback is None and "/torch/" not in f and f not in _SKIP:
            fallback = f"{Path(f).name}:{frame.f_lineno}"
        frame = frame.f_back
    return fallback or "?"


def _on_device(t) -> bool:
    return isinstance(t, torch.Tensor) and t.device.type != "cpu"


def _bool_index(args) -> bool:
    indices = args[1] if len(args) > 1 else []
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) and _on_device(i)
               for i in (indices or []))


def classify(func, args, kwargs) -> Optional[str]:
    """The kind of host sync ``func(*args, **kwargs)`` makes, or None."""
    if func in _ITEM:
        return "item" if any(_on_device(a) for a in args) else None
    if func in _SHAPE:
        return "data-dependent shape" if any(_on_device(a) for a in args) else None
    if func in _INDEX:
        if _bool_index(args):
            return "data-dependent shape"
        host_index = any(isinstance(i, torch.Tensor) and i.device.type == "cpu" and i.dim() > 0
                         for i in (args[1] or []))
        return "copy h2d" if host_index and _on_device(args[0]) else None  # the indices are copied over
    if func in _COPIES or func.overloadpacket is aten.to:
        return _copy_kind(func, args, kwargs)
    return None


def _argument(func, args, kwargs, name: str, default=None):
    """The value of schema argument ``name``, given positionally or by keyword."""
    for i, a in enumerate(func._schema.arguments):
        if a.name == name:
            return args[i] if i < len(args) else kwargs.get(name, default)
    return default


def _copy_kind(func, args, kwargs) -> Optional[str]:
    """``copy d2h`` / ``copy h2d`` (``(non_blocking)`` when asked so) of a copy between host and device."""
    if func is aten.copy_.default:
        dst, src = args[0].device, args[1].device
    elif func is aten.to.other:
        dst, src = args[1].device, args[0].device
    else:
        src = args[0].device
        dst = _argument(func, args, kwargs, "device") or src
    src_cpu, dst_cpu = src.type == "cpu", torch.device(dst).type == "cpu"
    if src_cpu == dst_cpu:
        return None
    direction = "copy d2h" if dst_cpu else "copy h2d"
    return direction + (" (non_blocking)" if _argument(func, args, kwargs, "non_blocking", False) else "")


class _Dispatch(TorchDispatchMode):
    def __init__(self, counter: "HostSyncCounter"):
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = classify(func, args, kwargs)
        if kind is not None:
            self.counter.record(kind, str(func.overloadpacket.__name__))
        return func(*args, **kwargs)


class _Function(TorchFunctionMode):
    def __init__(self, counter: "HostSyncCounter"):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _FACTORIES and kwargs.get("device") is not None and torch.device(kwargs["device"]).type != "cpu":
            if not (args and isinstance(args[0], torch.Tensor)):
                self.counter.record("tensor(data)", func.__name__)
        return func(*args, **kwargs)


class HostSyncCounter:
    """``with HostSyncCounter() as c: ...`` counts the host syncs of the operations inside."""

    def __init__(self):
        self.events: Counter = Counter()      # (stage, kind, op) -> count
        self.stage = "outside"
        self._modes = (_Function(self), _Dispatch(self))

    def record(self, kind: str, op: str) -> None:
        self.events[(self.stage, kind, op, _caller())] += 1

    def __enter__(self) -> "HostSyncCounter":
        for m in self._modes:
            m.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for m in reversed(self._modes):
            m.__exit__(*exc)

    def timer(self) -> "_StageObserver":
        return _StageObserver(self)

    def counted(self, kind: str) -> bool:
        return "(non_blocking)" not in kind

    def summary(self) -> dict:
        """{"total": syncs, "by_stage": {stage: syncs}, "ops": [{stage, kind, op, count}],
        "non_blocking_copies": n} (non-blocking copies are listed, not counted)."""
        ops = [{"stage": s, "kind": k, "op": o, "where": w, "count": n}
               for (s, k, o, w), n in sorted(self.events.items())]
        by_stage: Counter = Counter()
        for e in ops:
            if self.counted(e["kind"]):
                by_stage[e["stage"]] += e["count"]
        return {"total": sum(by_stage.values()), "by_stage": dict(by_stage), "ops": ops,
                "non_blocking_copies": sum(e["count"] for e in ops if not self.counted(e["kind"]))}


class _StageObserver:
    """A ``pipeline.run`` timer that only moves the counter from stage to stage (times nothing)."""

    def __init__(self, counter: HostSyncCounter):
        from methods.pipeline import STAGES

        self.counter, self.order = counter, STAGES

    def start(self) -> None:
        self.counter.stage = self.order[0]

    def lap(self, stage: str) -> None:
        i = self.order.index(stage)
        self.counter.stage = self.order[i + 1] if i + 1 < len(self.order) else "after"

    def seconds(self) -> dict:
        return {}
