"""Reading the project's YAML files (workflow config, profiles, claims): one loader that refuses a
duplicated key, and errors that name the file.

PyYAML's loaders keep the last of two equal keys silently (``cpu:`` written twice drops the first
block without a word); :class:`UniqueKeyLoader` raises instead, naming both lines. ``read_yaml``
turns every way a file can be unreadable -- missing, a directory, binary, a tab in the indentation,
a duplicated key -- into one error naming the file and what is wrong.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping with the same key twice."""


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises :class:`DuplicateKeyError` on a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader's own error says so
                    break
                if first is not None:
                    raise DuplicateKeyError(
                        "while constructing a mapping", node.start_mark,
                        f"found key {key!r} twice (first on line {first.line + 1}, again on line "
                        f"{key_node.start_mark.line + 1}); a later one would silently replace the first",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def loads(text: str) -> Any:
    """``yaml.safe_load`` with duplicate keys refused."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def _problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    hint = " (YAML indentation must use spaces, not tabs)" if "\\t" in problem or "tab" in problem else ""
    return f"{problem}{where}{hint}"


def read_yaml(path: str | Path, *, what: str = "YAML file", error: type[Exception] = ValueError) -> Any:
    """The parsed content of ``path``; ``error(message)`` naming the file when it cannot be read."""
    p = Path(path)
    if not p.exists():
        raise error(f"{what} {str(p)!r} does not exist")
    if not p.is_file():
        raise error(f"{what} {str(p)!r} is a directory, not a file")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {str(p)!r} is not a UTF-8 text file (binary?)") from None
    except OSError as exc:
        raise error(f"{what} {str(p)!r} cannot be read: {exc.strerror}") from None
    if "\x00" in text:
        raise error(f"{what} {str(p)!r} is not a text file (it holds NUL bytes)")
    try:
        return loads(text)
    except yaml.YAMLError as exc:
        raise error(f"{what} {str(p)!r} is not valid YAML: {_problem(exc)}") from None
