"""A job that is interrupted or fails never leaves the run with fewer (or silently stale) results.

Snakemake deletes a job's outputs before the job runs, so a SIGTERM while forced cell jobs ran
left those cells gone, and a downstream table job that failed on one bad cell took the previous
table with it. :func:`protect_results` (the Snakefile's last call) does three things:

1. every output under ``results/`` (not ``directory()`` or ``temp()``) is flagged ``update``:
   Snakemake then keeps the previous file while the job runs (the job writes its new file to a
   temporary name and renames it when complete: ``replicate.io``), backs it up, and puts it back
   if the job fails;
2. that backup and restore keep the file's modification time and carry its content digest
   (``<file>.sha256``, ``replicate.io``) along, and the failed job's metadata is not recorded for
   the restored file. Snakemake 9 gives the restored file a new mtime and then records the failed
   job as if it had produced it (with the checksums of the inputs that made it fail), so the next
   run said "Nothing to be done" with the failure forgotten; now the job is retried until it
   succeeds;
3. it publishes which rule writes which output (``REPLICATE_OUTPUT_RULES``), so a reader that
   refuses a damaged result (``replicate.io.verify_result``) can name the rule that rebuilds it;
4. the claim files (``results/claims``: read by no later job, so no reader would see a damaged
   one) are checked against their digests before anything runs; a changed one stops the run,
   naming it and the rule that rebuilds it.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from replicate.io import DIGEST_SUFFIX, RULES_ENV


def _flags(f) -> dict:
    return dict(getattr(f, "flags", {}) or {})


def keep_previous_outputs(rules, prefix: str = "results/") -> list[str]:
    """Flag every plain output under ``prefix`` ``update``; the rule names touched."""
    touched = []
    for rule in rules:
        for f in rule.output:
            flags = _flags(f)
            if not str(f).startswith(prefix) or {"directory", "temp", "pipe", "service", "update"} & set(flags):
                continue
            f.set_flags({**flags, "update": True})
            touched.append(rule.name)
    return sorted(set(touched))


def _copy_with_digest(src: Path, dst: Path) -> None:
    shutil.copy2(src, dst)  # copy2: the modification time too
    side = src.with_name(src.name + DIGEST_SUFFIX)
    if side.is_file():
        shutil.copy2(side, dst.with_name(dst.name + DIGEST_SUFFIX))


def patch_backups() -> bool:
    """Make Snakemake's backup / restore of ``update`` outputs keep mtimes and digests, and keep a
    failed job's metadata off the restored files; False where this Snakemake has no such hooks (the
    outputs are still kept while a job runs)."""
    try:
        from snakemake.persistence import FileBackupMixin, PersistenceBase
    except ImportError:
        return False
    if getattr(FileBackupMixin, "_replicate_patched", False):
        return True
    needed = ("_get_backup_path", "backup_output", "restore_output")
    if not all(hasattr(FileBackupMixin, n) for n in needed) or not hasattr(PersistenceBase, "finished"):
        return False
    original_backup, original_restore = FileBackupMixin.backup_output, FileBackupMixin.restore_output
    original_finished = PersistenceBase.finished

    def backup_output(self, path: Path) -> None:
        path = Path(path)
        if path.is_dir():
            return original_backup(self, path)
        dst = self._get_backup_path(path)
        dst.parent.mkdir(parents=True, exist_ok=True)
        _copy_with_digest(path, dst)

    def restore_output(self, path: Path) -> bool:
        path = Path(path)
        src = self._get_backup_path(path)
        if not src.is_file():
            done = original_restore(self, path)
        else:
            _copy_with_digest(src, path)
            src.unlink()
            src.with_name(src.name + DIGEST_SUFFIX).unlink(missing_ok=True)
            done = True
        if done:
            self.__dict__.setdefault("_replicate_restored", set()).add(str(path))
        return done

    async def finished(self, job) -> None:
        await original_finished(self, job)
        restored = self.__dict__.get("_replicate_restored", set())
        for f in job.output:
            if str(f) in restored:  # the failed job produced nothing: forget its record, judge by mtime
                self.cleanup_metadata(f)
                restored.discard(str(f))

    FileBackupMixin.backup_output = backup_output
    FileBackupMixin.restore_output = restore_output
    PersistenceBase.finished = finished
    FileBackupMixin._replicate_patched = True
    return True


def publish_output_rules(rules) -> dict[str, list[str]]:
    """rule name -> regexes of its outputs, in the environment the jobs inherit."""
    table = {}
    for rule in rules:
        patterns = []
        for f in rule.output:
            try:
                patterns.append(f.regex().pattern)
            except Exception:  # noqa: BLE001 (an output Snakemake cannot turn into a regex: left out)
                continue
        if patterns:
            table[rule.name] = patterns
    os.environ[RULES_ENV] = json.dumps(table)
    return table


def protect_results(workflow, prefix: str = "results/", sealed: tuple[str, ...] = ("results/claims",)) -> None:
    """The Snakefile's last call: items 1-4 of the module docstring."""
    rules = list(workflow.rules)
    keep_previous_outputs(rules, prefix)
    patch_backups()
    publish_output_rules(rules)
    for folder in sealed:
        check_sealed(folder, forced_names(sys.argv))


def forced_names(argv: list[str]):
    """The files and rules the command line forces to be rebuilt (Snakemake's own settings are not
    set yet while the Snakefile is read): every word of it when -f/-R/--forcerun is given, ALL for -F."""
    if any(a in ("-F", "--forceall") for a in argv):
        return ALL
    if not any(a in ("-f", "--force", "-R", "--forcerun") or a.startswith("--forcerun=") for a in argv):
        return set()
    return {w for a in argv for w in a.split("=")}


class _All:
    def __contains__(self, item) -> bool:
        return True


ALL = _All()


def check_sealed(folder: str | Path, forced=()) -> None:
    """Every file with a digest under ``folder`` (but those being rebuilt: ``forced``) still matches
    it; else ResultDigestError naming the file and the rule (``replicate.io.verify_result``)."""
    from replicate.io import rule_for, verify_result

    for side in sorted(Path(folder).rglob("*" + DIGEST_SUFFIX)):
        target = side.with_name(side.name[: -len(DIGEST_SUFFIX)])
        if target.is_file() and str(target) not in forced and rule_for(target) not in forced:
            try:
                verify_result(target)
            except ValueError as exc:
                raise type(exc)(f"{exc}; or remove it (rm {target} {target}{DIGEST_SUFFIX}) and run again (the "
                                f"claim files are checked before every run)") from None
