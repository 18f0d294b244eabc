"""Count the aten operations and host syncs of a span of PyTorch code, with their call sites.

``OpTrace`` is a context manager that stacks a ``TorchFunctionMode`` (Python-level calls: which
tensor method asked for a value, which factory was called without ``device=``) on a
``TorchDispatchMode`` (every aten operation that reaches the dispatcher from Python; operations
an op runs inside its own kernel are not seen, so each counts once). It runs on CPU and measures
what decides a reduction's cost on a GPU, where every op is a kernel launch and every sync a stall:

- ``ops``: aten operations, by name and by project call site (``file:line``);
  ``kernels``: the ops that launch work (views, aliases, ``empty`` allocations and the scalar
  reads below excluded);
- ``syncs``: points where the host waits for the device, each with its kind and call site:
  ``item`` / ``int`` / ``float`` / ``bool`` / ``index`` (a tensor read as a Python number),
  ``tolist`` / ``numpy``, ``data_dependent`` (an output whose size depends on values:
  ``nonzero``, boolean-mask indexing, ``masked_select``, ``unique``, ``bincount``,
  ``repeat_interleave`` without ``output_size``, ``equal``) and ``host_to_device`` (a blocking copy
  of host data to the device: a tensor built from Python data, a list used as an index, or a
  tensor made on the host and then moved or combined with a device tensor).

Device placement is simulated: tensors that exist when the trace starts (the inputs) and
everything computed from them are *device* tensors; tensors built from Python data or by a
factory called without ``device=`` (``torch.arange(n)``) are *host* tensors, and so is whatever is
computed from host tensors alone. Reading a host tensor is not a device sync (it is counted as a
host op instead); a host tensor with more than one element meeting a device tensor, or moved with
a blocking ``.to(device)``, is a ``host_to_device`` sync. A ``.to(device, non_blocking=True)`` is
recorded as an asynchronous upload, not a sync: the project's ``methods.primitives.padded.upload``
pins the host memory on CUDA, so the copy is queued on the stream and the host does not wait. On a
real GPU run the same code would do exactly these transfers; on CPU they are free, which is why
they must be counted rather than timed.

Under ``torch.inference_mode`` the dispatcher sees ``aten.item`` / ``aten.is_nonzero`` where
autograd mode shows ``aten._local_scalar_dense``; both are counted as the same scalar reads.
"""
from __future__ import annotations

import collections
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

__all__ = ["OpTrace", "TraceResult", "Sync", "trace", "PROJECT_ROOT"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_THIS_FILE = os.path.abspath(__file__)
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))

#: Python-level conversions that read a tensor's value (TorchFunctionMode names -> sync kind)
_SCALAR_READS = {"__int__": "int", "__float__": "float", "__bool__": "bool", "__index__": "index",
                 "item": "item", "__complex__": "item", "__format__": "item", "__repr__": "item"}
_HOST_COPIES = {"tolist": "tolist", "numpy": "numpy", "__array__": "numpy"}
#: aten ops whose output size depends on the values (the host must wait to allocate it)
_DATA_DEPENDENT = {"nonzero", "argwhere", "masked_select", "unique", "_unique", "_unique2",
                   "unique_consecutive", "unique_dim", "unique_dim_consecutive", "bincount",
                   "nonzero_numpy"}
#: aten ops that return a Python value read from the device (inference mode dispatches ``item`` and
#: ``is_nonzero`` where autograd mode dispatches ``_local_scalar_dense``)
_SCALAR_OPS = {"_local_scalar_dense", "item", "is_nonzero", "equal", "allclose"}
#: Python factory functions; called without ``device=`` they build host tensors
_FACTORIES = {"arange", "zeros", "ones", "full", "empty", "tensor", "as_tensor", "randperm", "rand",
              "randn", "randint", "linspace", "logspace", "eye", "scalar_tensor", "from_numpy"}
#: aten ops that launch no work (metadata, views, allocation)
_NO_KERNEL = {"detach", "detach_", "alias", "lift_fresh", "_local_scalar_dense", "item", "is_nonzero", "empty", "empty_strided",
              "empty_like", "new_empty", "new_empty_strided", "_reshape_alias", "set_", "resize_",
              "_unsafe_view", "sym_size", "sym_stride", "sym_numel", "sym_storage_offset", "dim",
              "is_same_size", "_has_compatible_shallow_copy_type"}


@dataclass(frozen=True)
class Sync:
    """One host sync: its kind, the aten op or Python call, and the project call site."""

    kind: str
    op: str
    site: str
    function: str

    def as_dict(self) -> dict:
        return {"kind": self.kind, "op": self.op, "site": self.site, "function": self.function}


@dataclass
class TraceResult:
    """What one traced span did. ``ops`` counts every aten op (device and host), ``kernels`` the
    device ops that launch work, ``host_ops`` those on host tensors only."""

    ops: int = 0
    kernels: int = 0
    host_ops: int = 0
    by_op: collections.Counter = field(default_factory=collections.Counter)
    by_site: collections.Counter = field(default_factory=collections.Counter)
    syncs: list[Sync] = field(default_factory=list)
    async_uploads: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def num_syncs(self) -> int:
        return len(self.syncs)

    def syncs_by_site(self) -> list[dict]:
        """Syncs grouped by (kind, op, site, function), most frequent first."""
        counts = collections.Counter((s.kind, s.op, s.site, s.function) for s in self.syncs)
        return [{"kind": k, "op": o, "site": s, "function": f, "count": n}
                for (k, o, s, f), n in counts.most_common()]

    def syncs_by_kind(self) -> dict[str, int]:
        return dict(collections.Counter(s.kind for s in self.syncs).most_common())

    def summary(self, top_sites: int = 15, top_ops: int = 15) -> dict:
        return {"ops": self.ops, "kernels": self.kernels, "host_ops": self.host_ops,
                "syncs": self.num_syncs, "syncs_by_kind": self.syncs_by_kind(),
                "async_uploads": dict(collections.Counter(self.async_uploads)),
                "sync_sites": self.syncs_by_site(),
                "top_op_sites": [{"site": s, "ops": n} for s, n in self.by_site.most_common(top_sites)],
                "top_ops": [{"op": o, "count": n} for o, n in self.by_op.most_common(top_ops)],
                "traced_wall_s": self.wall_s}


def _site(skip_external: bool = False) -> tuple[str, str]:
    """(``path:line``, function) of the innermost frame of this project outside torch and this file;
    ``external:<file>:<line>`` when a library (e.g. transformers) is innermost."""
    f = sys._getframe(2)
    external = None
    root = str(PROJECT_ROOT) + os.sep
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if fn != _THIS_FILE and not fn.startswith(_TORCH_DIR):
            if fn.startswith(root) and f"{os.sep}.venv{os.sep}" not in fn:
                rel = os.path.relpath(fn, PROJECT_ROOT)
                site = f"{rel}:{f.f_lineno}"
                return (site if external is None or skip_external else f"{external} <- {site}"), f.f_code.co_name
            if external is None and not fn.startswith("<"):
                external = f"external:{os.path.basename(fn)}:{f.f_lineno}"
        f = f.f_back
    return external or "unknown", "?"


class _Tags:
    """Which tensors are host tensors (weak references: no tensor is kept alive)."""

    def __init__(self):
        self.host = WeakIdKeyDictionary()

    def is_host(self, t: Any) -> bool:
        return isinstance(t, torch.Tensor) and t in self.host

    def mark_host(self, out: Any) -> None:
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.host[t] = True


class _FunctionLayer(TorchFunctionMode):
    """Remembers which Python-level call is running (for the dispatch layer) and sees the calls
    that never reach the dispatcher (``tolist``, ``numpy``) or decide placement (factories, ``to``)."""

    def __init__(self, tracer: "OpTrace"):
        super().__init__()
        self.t = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        t = self.t
        if name in _HOST_COPIES and args and not t.tags.is_host(args[0]):
            t.add_sync(_HOST_COPIES[name], name)
        host_factory = name in _FACTORIES and "device" not in kwargs and not (
            name == "as_tensor" and args and isinstance(args[0], torch.Tensor))
        prev = t.context
        t.context = ("host_factory" if host_factory else name)
        try:
            out = func(*args, **kwargs)
        finally:
            t.context = prev
        if host_factory:
            t.tags.mark_host(out)
        elif name in ("to", "cuda") and args and t.tags.is_host(args[0]) and _moves_to_device(args, kwargs):
            if kwargs.get("non_blocking"):  # queued on the stream (from pinned memory): no host wait
                t.result.async_uploads.append(_site()[0])
            else:
                t.add_sync("host_to_device", f"Tensor.{name}")
            if out is args[0]:  # a no-op move on CPU: give the caller a distinct (device) alias
                with torch._C.DisableTorchFunctionSubclass():
                    out = out.view(out.shape)
            t.tags.host.pop(out, None)
        return out


def _moves_to_device(args, kwargs) -> bool:
    if "device" in kwargs or args[0].__class__ is not torch.Tensor:
        return "device" in kwargs
    return any(isinstance(a, (torch.device, str, torch.Tensor)) and not isinstance(a, torch.dtype)
               for a in args[1:])


class _DispatchLayer(TorchDispatchMode):
    def __init__(self, tracer: "OpTrace"):
        super().__init__()
        self.t = tracer

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.t.record(func, args, kwargs, out)
        return out


class OpTrace:
    """``with OpTrace() as tr: fn()`` then ``tr.result`` (a :class:`TraceResult`).

    ``sites=False`` skips the per-op call-site walk (faster; syncs always carry their site)."""

    def __init__(self, sites: bool = True):
        self.sites = sites
        self.tags = _Tags()
        self.context: Optional[str] = None
        self.result = TraceResult()
        self._modes: list = []
        self._t0 = 0.0

    def __enter__(self) -> "OpTrace":
        self._modes = [_FunctionLayer(self), _DispatchLayer(self)]
        for m in self._modes:
            m.__enter__()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.result.wall_s = time.perf_counter() - self._t0
        for m in reversed(self._modes):
            m.__exit__(*exc)
        self._modes = []

    def add_sync(self, kind: str, op: str) -> None:
        site, fn = _site(skip_external=False)
        self.result.syncs.append(Sync(kind, op, site, fn))

    def record(self, func, args, kwargs, out) -> None:
        r = self.result
        name = func.overloadpacket.__name__
        r.ops += 1
        r.by_op[name] += 1
        if self.sites:
            r.by_site[_site()[0]] += 1
        tensors = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        host_in = [a for a in tensors if self.tags.is_host(a)]
        if name == "lift_fresh":  # a tensor from Python data (torch.tensor, a list index) or numpy
            if self.context in ("host_factory", None):  # None: torch.from_numpy (not overridable)
                self.tags.mark_host(out)
            else:
                self.add_sync("host_to_device", f"aten.{name} ({self.context})")
            return
        host_only = bool(tensors) and len(host_in) == len(tensors)
        if not tensors and self.context == "host_factory":
            host_only = True
        if host_only:
            r.host_ops += 1
            self.tags.mark_host(out)
            return
        if any(a.dim() > 0 for a in host_in):
            self.add_sync("host_to_device", f"aten.{name} (host tensor operand)")
        if name in _SCALAR_OPS:
            kind = _SCALAR_READS.get(self.context or "", "bool" if name in ("is_nonzero", "equal", "allclose") else "item")
            self.add_sync(kind, f"aten.{name} ({self.context})")
        elif name in _DATA_DEPENDENT or (name == "repeat_interleave" and kwargs.get("output_size") is None
                                         and func._overloadname in ("Tensor", "self_Tensor")):
            self.add_sync("data_dependent", f"aten.{name}")
        elif name in ("index", "index_put", "index_put_", "_index_put_impl_") and _bool_index(args):
            self.add_sync("data_dependent", f"aten.{name} (boolean mask)")
        if name not in _NO_KERNEL and not func.is_view:
            r.kernels += 1


def _bool_index(args) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in (indices or ()))


def trace(fn, *args, sites: bool = True, **kwargs) -> tuple[Any, TraceResult]:
    """Run ``fn(*args, **kwargs)`` under an :class:`OpTrace`: (its return value, the trace)."""
    with OpTrace(sites=sites) as tr:
        out = fn(*args, **kwargs)
    return out, tr.result
