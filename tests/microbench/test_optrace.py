"""The dispatch-level op / host-sync tracer (replicate.microbench.optrace): every kind of sync is found at
its call site, host-only work is not a device sync, and counts do not depend on inference mode."""
from __future__ import annotations

import pytest
import torch

from methods.primitives.padded import upload
from replicate.microbench.optrace import OpTrace, trace

HERE = "tests/microbench/test_optrace.py"


def _sites(result, kind):
    return sorted(int(s.site.rsplit(":", 1)[1]) for s in result.syncs if s.kind == kind)


def _line(fn, marker):
    """Line number of the source line of ``fn`` that contains ``marker``."""
    import inspect

    lines, start = inspect.getsourcelines(fn)
    return next(start + i for i, l in enumerate(lines) if marker in l)


def _syncing(x):
    n = int(x.sum() > 0)                       # int
    b = bool(x.max() > 0)                      # bool
    v = x.mean().item()                        # item
    lst = x[:, 0].tolist()                     # tolist
    m = x[x[:, 0] > 0]                         # boolean mask
    z = torch.nonzero(x[:, 1] > 0)             # nonzero
    d = torch.tensor([1, 2], device=x.device)  # Python data to the device
    h = x[torch.arange(2)]                     # a host tensor as an index
    return n, b, v, lst, m, z, d, h


@pytest.mark.parametrize("inference", [False, True])
def test_every_sync_kind_at_its_call_site(inference):
    x = torch.randn(6, 4)
    with torch.inference_mode(inference):
        _, r = trace(_syncing, x)
    assert r.syncs_by_kind() == {"int": 1, "bool": 1, "item": 1, "tolist": 1, "data_dependent": 2,
                                 "host_to_device": 2}
    assert all(s.site.startswith(HERE) and s.function == "_syncing" for s in r.syncs)
    assert _sites(r, "int") == [_line(_syncing, "# int")]
    assert _sites(r, "tolist") == [_line(_syncing, "# tolist")]
    assert _sites(r, "data_dependent") == [_line(_syncing, "# boolean mask"), _line(_syncing, "# nonzero")]
    assert _sites(r, "host_to_device") == [_line(_syncing, "# Python data"), _line(_syncing, "# a host tensor")]


def test_host_work_is_not_a_device_sync_and_uploads_are_async():
    x = torch.randn(5, 3)

    def host_side():
        meta = torch.arange(4)                     # host factory (no device=)
        k = int(meta.sum())                        # read on the host: no device sync
        ids = meta.tolist()
        dev = upload(torch.tensor(ids), x.device)  # pinned, non_blocking: queued, no wait
        return x[dev[:k % 5]]

    _, r = trace(host_side)
    assert r.num_syncs == 0
    assert r.host_ops >= 2 and len(r.async_uploads) == 1


def test_blocking_move_of_a_host_tensor_is_a_sync():
    x = torch.randn(5, 3)
    _, r = trace(lambda: x[torch.arange(3).to(x.device)])
    assert r.syncs_by_kind() == {"host_to_device": 1}


def test_op_counts_and_kernels():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    _, r = trace(lambda: (a + b).view(16).t().mul(2.0))
    assert r.ops == 4 and r.by_op["add"] == 1 and r.by_op["mul"] == 1
    assert r.kernels == 2          # view and t launch nothing
    assert sum(r.by_site.values()) == r.ops
    with OpTrace(sites=False) as tr:
        a @ b
    assert tr.result.ops == 1 and not tr.result.by_site
