"""An lmms-eval release from PyPI, importable task by task, for the parity tests.

``fetch(version, cache)`` runs ``pip download --no-deps lmms-eval==<version>`` into ``cache`` and
unpacks the wheel there (``Unavailable`` when PyPI cannot be reached: the tests skip with that reason).
``Release.utils(task)`` imports only ``lmms_eval/tasks/<task>/utils.py`` (and the ``_task_utils``
modules it imports) without running ``lmms_eval/__init__.py``: the three package levels are empty
module objects whose ``__path__`` points into the unpacked wheel. Third-party modules the task files
import at the top but that are not installed here (cv2, decord, datasets, loguru) and
``lmms_eval.utils`` (which pulls in transformers and jinja2, used only to locate videos) are replaced
by inert stand-ins: any call into them raises, so they cannot change what is compared, except the
logger, whose methods do nothing (the aggregations log their breakdowns). A task folder whose
``_default_template_yaml`` the wheel does not package (0.7.1) gets a stand-in holding only
``dataset_kwargs.cache_dir``, the one key its ``utils.py`` reads at import (to build video paths).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import subprocess
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import yaml


class Unavailable(RuntimeError):
    """The release could not be downloaded (no network to PyPI, or no such version)."""


def fetch(version: str, cache: Path) -> tuple[Path, str]:
    """(root holding lmms_eval/, sha256 of the wheel) of lmms-eval ``version``, downloaded once."""
    cache = Path(cache)
    wheels = cache / "wheels"
    target = cache / f"lmms_eval-{version}"
    found = sorted(wheels.glob(f"lmms_eval-{version}-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--disable-pip-version-check", f"lmms-eval=={version}", "-d", str(wheels)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"pip download lmms-eval=={version}: {exc}") from exc
        found = sorted(wheels.glob(f"lmms_eval-{version}-*.whl"))
        if proc.returncode != 0 or not found:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise Unavailable(f"pip download lmms-eval=={version} failed (PyPI unreachable?): {' | '.join(tail)}")
    digest = hashlib.sha256(found[0].read_bytes()).hexdigest()
    if not (target / "lmms_eval").is_dir():
        with zipfile.ZipFile(found[0]) as z:
            z.extractall(target)
    return target, digest


class _Inert:
    """A stand-in attribute: reading it is fine, calling it raises (so it cannot alter a result)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> "_Inert":
        return _Inert(f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"inert stand-in {self._name} was called: the compared code path needs the real module")


class _NoLog:
    def __getattr__(self, attr: str):
        return lambda *args, **kwargs: None


def _stand_in(name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__["__getattr__"] = lambda attr: _Inert(f"{name}.{attr}")
    if name == "loguru":
        mod.logger = _NoLog()
    return mod


THIRD_PARTY = ("cv2", "decord", "datasets", "loguru")


class Release:
    def __init__(self, version: str, root: Path, sha256: str):
        self.version, self.root, self.sha256 = version, Path(root), sha256
        self.pkg = self.root / "lmms_eval"
        self._modules: dict[str, types.ModuleType] = {}
        self.stand_in_files: list[str] = []
        self.stand_in_modules = [m for m in THIRD_PARTY if importlib.util.find_spec(m) is None]

    @contextlib.contextmanager
    def active(self):
        """sys.modules holds this release's lmms_eval (and the stand-ins) only inside the block: the
        task functions import _task_utils modules lazily, at call time."""
        for real in ("torch", "numpy", "PIL", "yaml"):  # imported for real, before any stand-in exists
            if importlib.util.find_spec(real) is not None:
                importlib.import_module(real)
        saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "lmms_eval" or k.startswith("lmms_eval.")}
        added = [m for m in self.stand_in_modules if m not in sys.modules]
        for m in added:
            sys.modules[m] = _stand_in(m)
        if not self._modules:
            for name, path in (("lmms_eval", self.pkg), ("lmms_eval.tasks", self.pkg / "tasks"),
                               ("lmms_eval.tasks._task_utils", self.pkg / "tasks" / "_task_utils")):
                mod = types.ModuleType(name)
                mod.__path__ = [str(path)]
                self._modules[name] = mod
            self._modules["lmms_eval.utils"] = _stand_in("lmms_eval.utils")
            self._modules["lmms_eval"].utils = self._modules["lmms_eval.utils"]
        sys.modules.update(self._modules)
        try:
            yield self
        finally:
            for k in [k for k in sys.modules if k == "lmms_eval" or k.startswith("lmms_eval.")]:
                self._modules[k] = sys.modules.pop(k)
            for m in added:
                sys.modules.pop(m, None)
            sys.modules.update(saved)

    def utils(self, task: str):
        """lmms_eval.tasks.<task>.utils of this release."""
        folder = self.pkg / "tasks" / task
        template = folder / "_default_template_yaml"
        if not template.exists() and "_default_template_yaml" in (folder / "utils.py").read_text():
            template.write_text(f"dataset_kwargs:\n  cache_dir: {task}\n")
            self.stand_in_files.append(str(template.relative_to(self.root)))
        with self.active():
            return importlib.import_module(f"lmms_eval.tasks.{task}.utils")

    def has_file(self, rel: str) -> bool:
        return (self.pkg / rel).is_file() and str(Path("lmms_eval") / rel) not in self.stand_in_files

    def task_config(self, task: str, yaml_name: str) -> tuple[dict[str, Any], bool]:
        """(the task YAML with its include merged in, whether every included file is the release's own);
        ``!function`` lines are dropped, as the task utils themselves do to read the YAML."""
        folder = self.pkg / "tasks" / task

        def load(name: str) -> tuple[dict, bool]:
            path = folder / name
            if not path.is_file() or str(path.relative_to(self.root)) in self.stand_in_files:
                return {}, False
            cfg = yaml.safe_load("".join(line for line in path.read_text().splitlines(True) if "!function" not in line)) or {}
            complete = True
            if "include" in cfg:
                base, complete = load(cfg.pop("include"))
                cfg = {**base, **cfg}
            return cfg, complete

        return load(yaml_name)

    def model_kwargs(self, cfg: dict[str, Any], wrapper: str) -> dict[str, Any] | None:
        """lmms_eval_specific_kwargs as api/task.py picks them for --model ``wrapper``: the model's own
        entry if the task names it, else the whole dict updated with "default" (same code in 0.3.0-0.7.3)."""
        kw = cfg.get("lmms_eval_specific_kwargs")
        if kw is None:
            return None
        kw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in kw.items()}
        if wrapper in kw:
            return kw[wrapper]
        if "default" in kw:
            kw.update(kw.get("default", {}))
        return kw
