"""The conda environment file and pyproject.toml must name the same requirements."""
from __future__ import annotations

import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.version import Version


def _pyproject(repo_root):
    with open(repo_root / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _conda_pip(repo_root):
    env = yaml.safe_load((repo_root / "envs" / "environment.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {Requirement(r).name: Requirement(r) for r in pip}


def test_conda_env_lists_every_pyproject_dependency(repo_root):
    deps = {Requirement(r).name: Requirement(r) for r in _pyproject(repo_root)["project"]["dependencies"]}
    conda = _conda_pip(repo_root)
    assert set(conda) == set(deps), f"only in pyproject: {set(deps) - set(conda)}; only in conda: {set(conda) - set(deps)}"
    for name, req in deps.items():
        if name == "torch":
            # The conda file pins the CPU build; the pin must satisfy pyproject's range.
            pinned = next(iter(conda[name].specifier)).version
            assert req.specifier.contains(Version(pinned)), f"torch pin {pinned} outside {req.specifier}"
        else:
            assert conda[name].specifier == req.specifier, f"{name}: {conda[name].specifier} != {req.specifier}"


def test_no_torchvision_anywhere(repo_root):
    # PyPI's torchvision is a CUDA build that breaks transformers' vision imports on CPU machines.
    forbidden = {"torchvision", "timm", "open-clip-torch"}
    names = {Requirement(r).name for r in _pyproject(repo_root)["project"]["dependencies"]}
    names |= set(_conda_pip(repo_root))
    for extra in _pyproject(repo_root)["project"].get("optional-dependencies", {}).values():
        names |= {Requirement(r).name for r in extra}
    assert not names & forbidden


def test_torch_range_admits_cpu_pin_and_gpu_image(repo_root):
    deps = {Requirement(r).name: Requirement(r) for r in _pyproject(repo_root)["project"]["dependencies"]}
    assert deps["torch"].specifier.contains(Version("2.13.0"))
    assert deps["torch"].specifier.contains(Version("2.11.0"))
    assert deps["transformers"].specifier.contains(Version("5.17.0"))
    assert deps["transformers"].specifier.contains(Version("5.23.0"))
