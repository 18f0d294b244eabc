"""What every ``python -m`` entry point of this repository does with its arguments.

A user's mistake -- a number that is NaN, out of range or not a whole number, an empty or
duplicated list item, an ``--out`` that is a file, a file that is not there -- ends the command
with exit code 2 and ONE line on stderr (``prog: error: <what is wrong and what is allowed>``),
never a traceback. Three pieces:

- argparse ``type=`` converters (:func:`finite_float`, :func:`integer`, :func:`number_list`,
  :func:`name_list`, :func:`out_dir`, :func:`out_file`, :func:`existing_file`,
  :func:`existing_dir`), so a bad value is refused while the arguments are parsed, before any work;
- :class:`Parser`, an ``argparse.ArgumentParser`` whose errors are that one line (argparse prints
  its whole usage block first);
- :class:`UsageError`, the base class of every error that is the user's mistake (the workflow's
  ``ConfigError``, the harness's argument errors, a damaged checkpoint or benchmark), and
  :func:`entry_point`, which turns one raised anywhere below ``main`` into that one line.

It lives in costmodel, the bottom of the package layers (workflow -> figures / methods ->
costmodel), so every package may import it.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence


class UsageError(ValueError):
    """A user's mistake (an argument, a config value, a file they named); the message names what is
    wrong and what is allowed. Entry points report it as one line and exit with code 2."""


def one_line(message: Any) -> str:
    return " ".join(str(message).split())


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line (``prog: error: ...``), exit code 2."""

    def error(self, message: str):  # noqa: D401 (argparse's name)
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def fail(prog: str, message: Any) -> "NoReturn":  # noqa: F821
    """Print ``prog: error: message`` (one line) and exit with code 2."""
    sys.stderr.write(f"{prog}: error: {one_line(message)}\n")
    raise SystemExit(2)


def entry_point(prog: str, *user_errors: type[BaseException]) -> Callable:
    """Decorate ``main(argv=None) -> int``: a :class:`UsageError` (or one of ``user_errors``) raised
    inside it becomes ``prog: error: ...`` on one line and exit code 2; anything else is a bug and
    keeps its traceback."""
    caught = (UsageError, *user_errors)

    def wrap(main: Callable) -> Callable:
        @functools.wraps(main)
        def run(argv: Optional[Sequence[str]] = None, *args, **kwargs):
            try:
                return main(argv, *args, **kwargs)
            except caught as exc:
                fail(prog, exc)

        return run

    return wrap


# ----------------------------------------------------------------------------------- numbers
def _bounds_text(lo, hi, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi}"
    return "finite"


def check_number(value: float, lo=None, hi=None, *, lo_open: bool = False, hi_open: bool = False,
                 what: str = "value") -> float:
    """``value`` if it is finite and inside the bounds, else UsageError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{what} must be a finite number {_bounds_text(lo, hi, lo_open, hi_open)}, got {value!r}")
    if (lo is not None and (value <= lo if lo_open else value < lo)) or \
            (hi is not None and (value >= hi if hi_open else value > hi)):
        raise UsageError(f"{what} must be {_bounds_text(lo, hi, lo_open, hi_open)}, got {value!r}")
    return value


def finite_float(lo=None, hi=None, *, lo_open: bool = False, hi_open: bool = False) -> Callable[[str], float]:
    """argparse type: a finite float (NaN and inf refused) inside the bounds."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a number (allowed: {_bounds_text(lo, hi, lo_open, hi_open)})") from None
        try:
            return check_number(value, lo, hi, lo_open=lo_open, hi_open=hi_open, what="the value")
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "number"
    return parse


def _int(text: str) -> int:
    s = str(text).strip()
    sign = s[0] if s[:1] in ("+", "-") else ""
    s = s[len(sign):]
    if not s.isdigit():
        raise ValueError(text)
    return int(sign + s)


def integer(lo: Optional[int] = None, hi: Optional[int] = None) -> Callable[[str], int]:
    """argparse type: a whole number (``2.0``, ``1e3``, ``nan`` refused) in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            value = _int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number (allowed: {_bounds_text(lo, hi, False, False)})") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} is outside the allowed range: {_bounds_text(lo, hi, False, False)}")
        return value

    parse.__name__ = "integer"
    return parse


# ----------------------------------------------------------------------------------- lists
def _unique(items: list, text: str, dedupe: bool) -> list:
    seen, out, dupes = set(), [], []
    for item in items:
        (dupes if item in seen else out).append(item)
        seen.add(item)
    if dupes and not dedupe:
        raise argparse.ArgumentTypeError(f"{sorted(set(map(str, dupes)))} given more than once in {text!r}")
    if dupes:
        print(f"note: duplicate(s) {sorted(set(map(str, dupes)))} in {text!r} dropped", file=sys.stderr)
    return out


def split_items(text: str) -> list[str]:
    """``'a, b,c'`` -> ['a', 'b', 'c']; an empty item (``'a,,b'``, ``','``) is refused."""
    items = [x.strip() for x in str(text).split(",")]
    if not text.strip() or any(not x for x in items):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty item; give comma-separated values, e.g. a,b")
    return items


def number_list(item: Callable[[str], Any], *, dedupe: bool = False) -> Callable[[str], list]:
    """argparse type: comma-separated values, each parsed by ``item`` (e.g. :func:`finite_float`);
    duplicates refused (``dedupe=True``: dropped with a notice on stderr)."""
    def parse(text: str) -> list:
        return _unique([item(x) for x in split_items(text)], text, dedupe)

    parse.__name__ = "list"
    return parse


def name_list(allowed: Optional[Iterable[str]] = None, *, dedupe: bool = False) -> Callable[[str], list]:
    """argparse type: comma-separated names, each one of ``allowed`` when given; duplicates refused
    (``dedupe=True``: dropped with a notice)."""
    def parse(text: str) -> list:
        names = split_items(text)
        if allowed is not None:
            known = list(allowed)
            bad = [n for n in names if n not in known]
            if bad:
                raise argparse.ArgumentTypeError(f"unknown {bad}; allowed: {', '.join(known)}")
        return _unique(names, text, dedupe)

    parse.__name__ = "names"
    return parse


# ----------------------------------------------------------------------------------- paths
def _writable_parent(path: Path) -> Path:
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{str(parent)!r} (on the way to {str(path)!r}) is not a directory")
    try:  # os.access says yes to root everywhere; a real (removed at once) file says the truth
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot write in {str(parent)!r} ({exc.strerror})") from None
    return parent


def out_dir(text: str) -> Path:
    """argparse type: a directory to write into (existing, or creatable in a writable parent); an
    empty value or an existing file is refused. Nothing is created here."""
    if not str(text).strip():
        raise argparse.ArgumentTypeError("an empty path is not an output directory; name one, e.g. results/run1")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a directory")
    _writable_parent(path)
    return path


def out_file(text: str) -> Path:
    """argparse type: a file to write (its folder existing or creatable); an empty value or an
    existing directory is refused."""
    if not str(text).strip():
        raise argparse.ArgumentTypeError("an empty path is not an output file; name one, e.g. out.json")
    path = Path(text).expanduser()
    if path.is_dir() or str(text).endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; name a file inside it, e.g. {text.rstrip('/')}/out.json")
    _writable_parent(path.parent)
    return path


def existing_file(text: str) -> Path:
    """argparse type: a file that exists."""
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} {'is a directory' if path.is_dir() else 'does not exist'}; "
                                         f"expected a file")
    return path


def existing_dir(text: str) -> Path:
    """argparse type: a directory that exists."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} {'is a file' if path.exists() else 'does not exist'}; "
                                         f"expected a directory")
    return path
