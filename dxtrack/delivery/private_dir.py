"""Opening the spool's directory safely on a shared machine.

The path is walked one component at a time from ``/`` with ``O_NOFOLLOW``: missing directories
are created mode 0700. Above the directories dxtrack owns, a symbolic link is followed only
when root or the current user owns it, and every directory must be root's or the current
user's and not writable by others (unless sticky, like ``/tmp``). The directories dxtrack owns
(the spool directory and each destination's below it) must not be symbolic links, and must be
the current user's and not writable by group or others. The result is an open directory
descriptor, so that every later file operation is relative to the directory that was checked.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import PurePosixPath

MAX_SYMLINKS = 40
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class UnsafeDirectory(Exception):
    """The directory is not private to the current user; the message says why."""


def open_private_dir(path: str | os.PathLike[str], private_depth: int = 1) -> int:
    """Create (0700) or open ``path`` and return a descriptor of it, or raise
    ``UnsafeDirectory``. Its last ``private_depth`` components (the directories dxtrack owns)
    must not be symbolic links at all."""
    given = PurePosixPath(os.path.abspath(path)).parts[1:]
    parts = [(part, i >= len(given) - private_depth) for i, part in enumerate(given)]
    uid = os.geteuid()
    stack = [os.open("/", DIR_FLAGS)]
    names: list[str] = []
    hops = 0
    try:
        while parts:
            part, private = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                    names.pop()
                continue
            parent = stack[-1]
            where = "/" + "/".join([*names, part])
            try:
                info = os.stat(part, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                _mkdir(part, parent)
                info = os.stat(part, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                hops += 1
                if private:
                    raise UnsafeDirectory(f"{where} is a symbolic link")
                if info.st_uid not in (0, uid):
                    raise UnsafeDirectory(f"{where} is a symbolic link owned by uid {info.st_uid}")
                if hops > MAX_SYMLINKS:
                    raise UnsafeDirectory(f"{where}: too many symbolic links")
                target = os.readlink(part, dir_fd=parent)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                    names.clear()
                parts[:0] = [(p, False) for p in PurePosixPath(target).parts if p != "/"]
                continue
            stack.append(os.open(part, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent))
            names.append(part)
            (_check_private if private else _check_on_the_way)(stack[-1], where, uid)
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)


def _mkdir(name: str, parent: int) -> None:
    with contextlib.suppress(FileExistsError):  # made by another process meanwhile
        os.mkdir(name, 0o700, dir_fd=parent)


def _check_on_the_way(fd: int, name: str, uid: int) -> None:
    """A directory above: root's or the current user's, and nobody else may swap what it
    holds (not writable by others, unless sticky)."""
    info = os.fstat(fd)
    if info.st_uid not in (0, uid):
        raise UnsafeDirectory(f"{name} is owned by uid {info.st_uid}")
    others_write = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if others_write and not info.st_mode & stat.S_ISVTX:
        raise UnsafeDirectory(f"{name} is writable by group or others")


def _check_private(fd: int, path: str, uid: int) -> None:
    """A directory of dxtrack's own: the current user's, not writable by group or others."""
    info = os.fstat(fd)
    if info.st_uid != uid:
        raise UnsafeDirectory(f"{path} is owned by uid {info.st_uid}, not {uid}")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeDirectory(
            f"{path} has mode {stat.S_IMODE(info.st_mode):04o}: writable by group or others"
        )
