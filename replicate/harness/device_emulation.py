"""An emulated accelerator on a CPU machine: catches tensors left on the host.

On a CPU-only machine every tensor lives on one device, so code that builds a tensor on the host
and combines it with the model's tensors (``indices should be either on cpu or on the same
device``) passes every CPU test and fails on the first GPU. :class:`EmulatedDevice` gives the model
and its inputs a device of their own without a GPU: each of their tensors is an
:class:`EmulatedTensor`, a wrapper that reports the device ``meta`` and computes on the CPU tensor
inside it. Every operation is checked at the dispatcher: its tensor arguments must all be on the
emulated device or all on the host (0-dim host scalars and host index tensors of an indexing op
excepted, as CUDA accepts them; copies between the two are explicit transfers and allowed). A mix raises :class:`DeviceMix` naming the
operation, so a test of the whole request path fails exactly where a GPU would.

Factories follow their ``device`` argument: ``torch.zeros(..., device=x.device)`` lands on the
emulated device, ``torch.zeros(...)`` on the host. ``torch.tensor(data, device=...)`` (which the
dispatcher never sees) is caught at the torch-function level.

    with EmulatedDevice() as dev:
        dev.move(adapter.model)                       # parameters and buffers
        pixels = dev.tensor(pixels)
        methods.pipeline.run(adapter, method, pixels, question)

Results are the CPU results: the emulation changes where tensors are said to be, not their values.
"""
from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

EMULATED = torch.device("meta")
aten = torch.ops.aten
_COPIES = {aten._to_copy.default, aten.copy_.default, aten.to.device, aten.to.dtype_layout, aten.to.other,
           aten._has_compatible_shallow_copy_type.default}   # the last: Module.to's metadata check
#: indexing a device tensor with host index tensors is allowed on CUDA (the indices are copied over)
_INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}
_FACTORIES = {torch.tensor, torch.as_tensor, torch.asarray}


class DeviceMix(AssertionError):
    """An operation combined tensors of the emulated device with host tensors."""


class EmulatedTensor(torch.Tensor):
    """A CPU tensor (``elem``) that says it lives on the emulated device."""

    elem: torch.Tensor

    @staticmethod
    def __new__(cls, elem: torch.Tensor):
        out = torch.Tensor._make_wrapper_subclass(
            cls, elem.shape, strides=elem.stride(), storage_offset=elem.storage_offset(), dtype=elem.dtype,
            layout=elem.layout, device=EMULATED, requires_grad=elem.requires_grad)
        out.elem = elem
        return out

    def tolist(self):  # a device tensor's values reach the host through a copy (dispatched, counted)
        return self.cpu().tolist()

    def numpy(self, *args, **kwargs):
        return self.cpu().numpy(*args, **kwargs)

    def __repr__(self):
        return f"EmulatedTensor({self.elem!r})"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return NotImplemented  # handled by the active EmulatedDevice mode


def _tensors(x):
    """The tensors in an op's arguments (nested in lists, tuples and dicts), in order."""
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (list, tuple)):
        for y in x:
            yield from _tensors(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _tensors(y)


def _map(fn, x):
    """``x`` with every tensor replaced by ``fn(tensor)`` (lists, tuples and dicts rebuilt)."""
    if isinstance(x, torch.Tensor):
        return fn(x)
    if isinstance(x, (list, tuple)):
        out = [_map(fn, y) for y in x]
        return out if isinstance(x, list) else type(x)(out) if not hasattr(x, "_fields") else type(x)(*out)
    if isinstance(x, dict):
        return {k: _map(fn, v) for k, v in x.items()}
    return x


def _wrap(t: torch.Tensor) -> EmulatedTensor:
    # a wrapper made under inference mode would be an inference tensor, whose version counter a view
    # of a normal tensor (a parameter under the emulation) cannot share
    with torch.inference_mode(False):
        return EmulatedTensor(t)


def _is_emulated_device(device) -> bool:
    return device is not None and torch.device(device).type == EMULATED.type


def _check_one_device(func, args, kwargs) -> None:
    tensors = list(_tensors((args, kwargs)))
    emulated = [t for t in tensors if isinstance(t, EmulatedTensor)]
    host = [t for t in tensors if not isinstance(t, EmulatedTensor) and t.dim() > 0]
    if func in _INDEXING and isinstance(args[0], EmulatedTensor):
        indices = [i for i in (args[1] or []) if isinstance(i, torch.Tensor)]
        host = [t for t in host if not any(t is i for i in indices)]
    stray = [t for t in host if t.device.type == EMULATED.type]
    if stray:
        raise DeviceMix(f"{func}: a tensor without data on the emulated device (made outside the emulation)")
    if emulated and host and func not in _COPIES:
        raise DeviceMix(f"{func}: tensors on the device mixed with host tensors of shapes "
                        f"{[tuple(t.shape) for t in host]} (on a GPU: 'expected all tensors to be on the same "
                        "device' or 'indices should be either on cpu or on the same device')")


_DEVICE_ARGUMENTS: dict = {}


def _device_positions(func) -> list[tuple[int, str]]:
    """(position, name) of the ``Device`` arguments of ``func``'s schema (cached per op)."""
    if func not in _DEVICE_ARGUMENTS:
        _DEVICE_ARGUMENTS[func] = [(i, a.name) for i, a in enumerate(func._schema.arguments)
                                   if "Device" in str(a.type)]
    return _DEVICE_ARGUMENTS[func]


def _device_arguments(func, args, kwargs) -> tuple[list, dict, bool, bool]:
    """(args, kwargs) with every emulated ``Device`` argument (positional or keyword) made the CPU,
    whether one was (``to_device``) and whether a host device was named instead (``to_host``)."""
    args, kwargs = list(args), dict(kwargs)
    to_device = to_host = False
    for i, name in _device_positions(func):
        where, key = (args, i) if i < len(args) else (kwargs, name)
        value = where[key] if (where is args or key in kwargs) else None
        if value is None:
            continue
        if _is_emulated_device(value):
            where[key], to_device = torch.device("cpu"), True
        else:
            to_host = True
    return args, kwargs, to_device, to_host


class _Dispatch(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        _check_one_device(func, args, kwargs)
        any_emulated = any(isinstance(t, EmulatedTensor) for t in _tensors((args, kwargs)))
        args, kwargs, to_device, to_host = _device_arguments(func, args, kwargs)
        unwrap = lambda t: t.elem if isinstance(t, EmulatedTensor) else t
        out = func(*_map(unwrap, args), **_map(unwrap, kwargs))
        if func is aten.copy_.default:
            return args[0]
        if to_host and not to_device:
            return out                               # an explicit copy to the host
        if not (to_device or any_emulated):
            return out
        if args and isinstance(args[0], EmulatedTensor) and out is args[0].elem:
            return args[0]                           # in-place op: the same wrapper
        return _map(_wrap, out)


class _Function(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if (func in _FACTORIES and _is_emulated_device(kwargs.get("device"))
                and not (args and isinstance(args[0], torch.Tensor))):
            kwargs.pop("device")
            return EmulatedTensor(func(*args, **kwargs))     # host data onto the device (no dispatch)
        return func(*args, **kwargs)


class EmulatedDevice:
    """Context in which :meth:`move` / :meth:`tensor` put modules and tensors on the emulated device."""

    def __init__(self):
        self._modes = (_Dispatch(), _Function())
        self._overwrite = None

    def __enter__(self) -> "EmulatedDevice":
        self._overwrite = torch.__future__.get_overwrite_module_params_on_conversion()
        torch.__future__.set_overwrite_module_params_on_conversion(True)
        for m in self._modes:
            m.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for m in reversed(self._modes):
            m.__exit__(*exc)
        torch.__future__.set_overwrite_module_params_on_conversion(self._overwrite)

    @staticmethod
    def tensor(t: torch.Tensor) -> EmulatedTensor:
        return EmulatedTensor(t.detach() if not t.requires_grad else t)

    def move(self, module: torch.nn.Module) -> torch.nn.Module:
        """Parameters and buffers of ``module`` onto the emulated device (in place)."""
        return module._apply(lambda t: t if isinstance(t, EmulatedTensor) else EmulatedTensor(t))
