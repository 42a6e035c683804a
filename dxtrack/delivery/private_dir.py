"""Opening the spool's directory safely on a shared machine.

The path is walked one component at a time from ``/`` with ``O_NOFOLLOW``: missing directories
are created mode 0700; a symbolic link is followed only when root or the current user owns it;
every directory on the way must be owned by root or the current user and not writable by
others (unless sticky, like ``/tmp``), and the spool directory itself must be the current
user's with no access for group or others. The result is an open directory descriptor, so that
every later file operation is relative to the directory that was checked.
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


def open_private_dir(path: str | os.PathLike[str]) -> int:
    """Create (0700) or open ``path`` and return a descriptor of it, or raise
    ``UnsafeDirectory``."""
    parts = list(PurePosixPath(os.path.abspath(path)).parts[1:])
    uid = os.geteuid()
    stack = [os.open("/", DIR_FLAGS)]
    hops = 0
    try:
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            parent = stack[-1]
            try:
                info = os.stat(part, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                _mkdir(part, parent)
                info = os.stat(part, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                hops += 1
                if info.st_uid not in (0, uid):
                    raise UnsafeDirectory(f"{part!r} is a symbolic link owned by uid {info.st_uid}")
                if hops > MAX_SYMLINKS:
                    raise UnsafeDirectory("too many symbolic links")
                target = os.readlink(part, dir_fd=parent)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                parts[:0] = PurePosixPath(target).parts[1 if target.startswith("/") else 0 :]
                continue
            fd = os.open(
                part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent
            )
            stack.append(fd)
            _check_on_the_way(fd, part, uid)
        _check_private(stack[-1], os.fspath(path), uid)
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)


def _mkdir(name: str, parent: int) -> None:
    with contextlib.suppress(FileExistsError):  # made by another process meanwhile
        os.mkdir(name, 0o700, dir_fd=parent)


def _check_on_the_way(fd: int, name: str, uid: int) -> None:
    info = os.fstat(fd)
    if info.st_uid not in (0, uid):
        raise UnsafeDirectory(f"{name!r} is owned by uid {info.st_uid}")
    others_write = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if others_write and not info.st_mode & stat.S_ISVTX:
        raise UnsafeDirectory(f"{name!r} is writable by group or others")


def _check_private(fd: int, path: str, uid: int) -> None:
    info = os.fstat(fd)
    if info.st_uid != uid:
        raise UnsafeDirectory(f"{path} is owned by uid {info.st_uid}, not {uid}")
    if info.st_mode & 0o077:
        raise UnsafeDirectory(
            f"{path} has mode {stat.S_IMODE(info.st_mode):04o}; it must be 0700 (no access for "
            "group or others)"
        )
