"""The base revision of a change, read from git: its files as they were, to build its database from.

A run against a base compares the working tree (the head) with the revision the change started from:
the merge base of REF and HEAD, which is what a pull request's diff is against. Its files are
exported with `git archive` into a temporary directory, never checked out over the user's tree.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

_FETCH = "fetch it first (in GitHub Actions: actions/checkout with `fetch-depth: 0`)"


@dataclass(frozen=True)
class Revision:
    """The base revision, exported: `project` is the directory that corresponds to the one the run
    started in, inside the exported tree."""

    ref: str
    commit: str
    project: Path
    tree: Path  # the exported tree's root
    checkout: Path  # the root of the user's own checkout

    @property
    def short(self) -> str:
        return self.commit[:12]

    def mapped(self, path: Path) -> Path:
        """Where an absolute path into the user's checkout is in the exported tree (others stay as they are)."""
        if path.is_absolute() and path.is_relative_to(self.checkout):
            return self.tree / path.relative_to(self.checkout)
        return path


def _git(where: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ConfigError("--base needs git, and no `git` command was found on PATH") from None
    if done.returncode != 0:
        raise _GitFailed(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"git {args[0]} failed")
    return done.stdout.strip()


class _GitFailed(Exception):
    pass


def merge_base(ref: str, where: Path) -> str:
    """The commit REF's line and HEAD's line share last: what the change is diffed against."""
    try:
        top = _git(where, "rev-parse", "--show-toplevel")
    except _GitFailed:
        raise ConfigError(f"--base {ref}: {where} is not inside a git repository; run from the project's checkout") from None
    try:
        commit = _git(Path(top), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except _GitFailed:
        raise ConfigError(f"--base {ref}: no such revision in the repository at {top}; {_FETCH}") from None
    try:
        return _git(Path(top), "merge-base", commit, "HEAD")
    except _GitFailed:
        raise ConfigError(
            f"--base {ref}: it shares no history with HEAD in {top} (a shallow clone?); {_FETCH}"
        ) from None


def _inside(member: tarfile.TarInfo, root: Path) -> bool:
    """Whether a member of the archive, and what a link of it points at, stays inside `root`: the
    base revision's tree comes from the repository like a pull request's files, so a link in it may
    not make a later write land outside the scratch directory."""
    target = (root / member.name).resolve()
    if not target.is_relative_to(root.resolve()):
        return False
    if member.issym():
        return (target.parent / member.linkname).resolve().is_relative_to(root.resolve())
    if member.islnk():
        return (root / member.linkname).resolve().is_relative_to(root.resolve())
    return member.isfile() or member.isdir()


@contextmanager
def exported(ref: str, where: Path) -> Iterator[Revision]:
    """The merge base of `ref` and HEAD, exported to a temporary directory for the duration of the block."""
    commit = merge_base(ref, where)
    top = Path(_git(where, "rev-parse", "--show-toplevel"))
    prefix = _git(where, "rev-parse", "--show-prefix")
    scratch = Path(tempfile.mkdtemp(prefix="querywarden_base_"))
    try:
        archive = subprocess.Popen(["git", "-C", str(top), "archive", "--format=tar", commit], stdout=subprocess.PIPE)
        assert archive.stdout is not None
        with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
            for member in tar:
                if _inside(member, scratch):
                    tar.extract(member, scratch, set_attrs=False)
        if archive.wait() != 0:
            raise ConfigError(f"--base {ref}: `git archive {commit[:12]}` failed in {top}")
        yield Revision(ref, commit, scratch / prefix, scratch, top)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
