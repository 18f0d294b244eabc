"""Do the batched reductions give the same output as an earlier commit's? Kept indices and features
of every batched method, this checkout against another, on the op-count benchmark's videos.

``python -m replicate.microbench.reduction_equivalence --old-tree DIR --out docs/measured/...json``

``DIR`` holds an earlier commit's ``methods/`` and ``costmodel/`` (``git archive <commit> methods
costmodel | tar -x -C DIR``). Both sides run in their own process on the same seeded inputs
(:mod:`replicate.microbench.videos`, the settings of :mod:`replicate.microbench.reduction_ops`);
this checkout runs both of its paths (CPU cache blocking on, and off as on a GPU), and the CPU path
once more with every GEMM through ``torch.matmul`` (``methods.primitives.onednn_gemm(False)``), so a
difference that only oneDNN's rounding makes shows as such. Per run: whether
the kept indices are equal and the largest absolute feature difference, against ``--atol``
(issue 26: indices equal, features within 1e-6).
"""
from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import typing
from pathlib import Path

import torch

from costmodel.cli import Parser, entry_point, existing_dir, finite_float, integer, out_file

BATCHED = ("tango", "holitom-wo-m", "prunevid", "dycoke", "visionzip", "fastvid")
_CHILD = r"""
import json, sys, torch
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import methods
from replicate.microbench.reduction_equivalence import reduce_all
spec = json.loads(sys.argv[2])
out = reduce_all(spec, blocking=None)
out["__methods__"] = methods.__file__
torch.save(out, sys.argv[3])
"""


def cases(settings, methods_, dim):
    """(label, setting, method, retention, options, input) of every run to compare."""
    from replicate.microbench.reduction_ops import SETTINGS, runs
    from replicate.microbench.videos import INPUTS

    out = []
    for r in runs(settings, methods_):
        if r.method not in BATCHED or (r.method == "dycoke" and r.retention < 0.25):
            continue
        for inp, fidelity in itertools.product(INPUTS, _fidelities(r.method)):
            options = r.options if fidelity is None else {**r.options, "fidelity": fidelity}
            out.append({"label": f"{r.label}/{inp}" + (f"/{fidelity}" if fidelity else ""), "setting": r.setting,
                        "method": r.method, "retention": r.retention, "options": options, "input": inp,
                        "spec": [SETTINGS[r.setting].spec.frames, list(SETTINGS[r.setting].spec.grid),
                                 dim or SETTINGS[r.setting].spec.dim, SETTINGS[r.setting].spec.newline_policy]})
    return out


def _fidelities(method: str) -> tuple:
    """Every value of a method's ``fidelity`` option (its Config's Literal; issue 24), else (None,)."""
    from methods.registry import method_class

    hints = typing.get_type_hints(method_class(method).Config)
    return typing.get_args(hints["fidelity"]) if "fidelity" in hints else (None,)


def reduce_all(spec: list, blocking, onednn: bool = True) -> dict:
    """label -> (source, features) of each case, with the ``methods`` package on ``sys.path``
    (``onednn``: whether the CPU GEMMs may use oneDNN, ``methods.primitives.onednn_gemm``)."""
    from methods.registry import get_method
    from replicate.microbench.videos import INPUTS, VideoSpec, video_tokens

    out = {}
    torch.set_num_threads(2)
    for c in spec:
        frames, grid, dim, policy = c["spec"]
        tokens = video_tokens(VideoSpec(frames, tuple(grid), dim, policy), INPUTS[c["input"]], seed=0)
        m = get_method(c["method"], retention=c["retention"], **c["options"])
        with torch.inference_mode(), _blocking(blocking), _gemm(onednn):
            red = m.reduce(tokens)
        out[c["label"]] = (red.source.clone(), red.features.clone())
    return out


def _blocking(enabled):
    import contextlib

    if enabled is None:
        return contextlib.nullcontext()
    from methods.primitives import cache_blocking
    return cache_blocking(enabled)


def _gemm(onednn: bool):
    import contextlib

    from methods import primitives
    if onednn or not hasattr(primitives, "onednn_gemm"):   # an older tree has only torch.matmul
        return contextlib.nullcontext()
    return primitives.onednn_gemm(False)


def compare(old: dict, new: dict, atol: float) -> dict:
    res = {}
    for label, (src0, f0) in old.items():
        src1, f1 = new[label]
        same_idx = src0.shape == src1.shape and torch.equal(src0, src1)
        diff = float((f0.float() - f1.float()).abs().max()) if same_idx and f0.numel() else None
        res[label] = {"kept": int(src0.numel()), "indices_equal": same_idx, "max_abs_diff": diff,
                      "ok": same_idx and (diff is None or diff <= atol)}
    return res


@entry_point("python -m replicate.microbench.reduction_equivalence")
def main(argv=None) -> int:
    p = Parser(prog="python -m replicate.microbench.reduction_equivalence", description=__doc__.splitlines()[0])
    p.add_argument("--old-tree", required=True, type=existing_dir, help="folder with an earlier commit's methods/")
    p.add_argument("--out", required=True, type=out_file)
    p.add_argument("--settings", nargs="*", default=None)
    p.add_argument("--methods", nargs="*", default=None, choices=BATCHED)
    p.add_argument("--dim", type=integer(8, 16384), default=None, help="feature width (default: each setting's)")
    p.add_argument("--atol", type=finite_float(0), default=1e-6)
    a = p.parse_args(argv)
    if not (a.old_tree / "methods" / "__init__.py").is_file():
        p.error(f"--old-tree {a.old_tree} has no methods/__init__.py (git archive <commit> methods costmodel)")
    spec = cases(a.settings, a.methods, a.dim)
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "old.pt"
        subprocess.run([sys.executable, "-c", _CHILD, str(a.old_tree.resolve()), json.dumps(spec), str(dump)],
                       check=True)
        old = torch.load(dump)
    old_methods = old.pop("__methods__")
    if not old_methods.startswith(str(a.old_tree.resolve())):
        raise SystemExit(f"the old side imported methods from {old_methods}, not from {a.old_tree}")
    paths = {"cpu-blocked": compare(old, reduce_all(spec, True), a.atol),
             "cpu-blocked, torch.matmul GEMMs": compare(old, reduce_all(spec, True, onednn=False), a.atol),
             "unblocked": compare(old, reduce_all(spec, False), a.atol)}
    from replicate.io import write_json
    from replicate.microbench.methods import bench_provenance

    ok = all(r["ok"] for path in paths.values() for r in path.values())
    write_json(a.out, {"what": "batched reductions against an earlier commit's: kept indices equal, features "
                               "within atol", "old_tree": str(a.old_tree), "atol": a.atol, "all_ok": ok,
                       "paths": paths, "provenance": bench_provenance()})
    bad = [f"{k}: {lab}" for k, path in paths.items() for lab, r in path.items() if not r["ok"]]
    print(f"{sum(len(v) for v in paths.values())} comparisons, {len(bad)} differ" + "".join(f"\n  {b}" for b in bad))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
