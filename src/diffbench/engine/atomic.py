"""Atomic file writes: a reader (or a crash, or kill -9) sees the old file or the new one.

The new content goes to a temporary file in the destination's own folder (same file system,
so the rename is atomic), is flushed and fsync'ed, then ``os.replace``-d over the target; the
folder is fsync'ed afterwards so the rename itself survives a power cut (POSIX). A leftover
temporary file (``.<name>.<random>.tmp``) can only remain after a kill between create and
rename; it never has the target's name.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from typing import Optional, Union

from diffbench.engine.errors import ConfigError

PathLike = Union[str, "os.PathLike[str]"]


def check_writable_target(path: PathLike) -> str:
    """Return ``path`` made absolute if a file can be written there, else raise ConfigError.

    Checks before any work is done that the folder exists and is a folder, that ``path`` is
    not itself a folder, and — by creating and removing an empty temporary file there, the
    only test that is right for root, ACLs and read-only mounts alike — that the folder
    takes new files.

    Raises:
        ConfigError: one-line reason ("folder does not exist: ...", "... is a folder",
            "permission denied", "read-only file system").
    """
    target = check_target_path(path)
    try:
        fd, probe = tempfile.mkstemp(dir=os.path.dirname(target),
                                     prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {_reason(exc, target)}") from None
    os.close(fd)
    _unlink_quietly(probe)
    return target


def check_target_path(path: PathLike) -> str:
    """The cheap part of :func:`check_writable_target` (no file is created).

    A symbolic link is followed (the file it points to is written, as ``open()`` would); a
    path that holds something other than a regular file (a device, a FIFO, a socket) is
    refused: the atomic rename would replace that node with a plain file.
    """
    given = os.path.abspath(os.fspath(path))
    target = os.path.realpath(given)
    folder = os.path.dirname(target)
    if os.path.isdir(target):
        raise ConfigError(f"cannot write {given}: it is a folder")
    try:
        mode = os.stat(target).st_mode
    except OSError:
        mode = None  # nothing there yet (or a dangling link): a new file is created
    if mode is not None and not stat.S_ISREG(mode):
        raise ConfigError(f"cannot write {given}: it is not a regular file (a device, pipe "
                          "or socket); give a file path")
    if not os.path.exists(folder):
        raise ConfigError(f"cannot write {target}: folder does not exist: {folder}")
    if not os.path.isdir(folder):
        raise ConfigError(f"cannot write {target}: {folder} is not a folder")
    return target


def write_bytes(path: PathLike, data: bytes, mode: Optional[int] = None) -> str:
    """Write ``data`` to ``path`` atomically; return the absolute path written.

    ``mode`` is set on the new file before the rename (mkstemp creates files 0600). None (the
    default) gives what a plain ``open(path, "w")`` would: the permissions of the file being
    replaced, or for a new file 0666 less the process umask.

    Raises:
        ConfigError: the folder is missing, not writable, full, or ``path`` is a folder —
            one line naming the path and the reason. The target is untouched in every case.
    """
    target = check_target_path(path)
    folder = os.path.dirname(target)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.",
                                   suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {_reason(exc, target)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode if mode is not None else _default_mode(target))
        os.replace(tmp, target)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise ConfigError(f"cannot write {target}: {_reason(exc)}") from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_folder(folder)
    return target


def write_text(path: PathLike, text: str, encoding: str = "utf-8") -> str:
    """:func:`write_bytes` for text (UTF-8 by default). Same errors."""
    return write_bytes(path, text.encode(encoding))


def _default_mode(target: str) -> int:
    """Permission bits for a file written to ``target`` as ``open()`` would leave them."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # Linux shows the umask in /proc without changing it; elsewhere set-and-restore (the only
    # portable way to read it).
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def _reason(exc: OSError, target: Optional[str] = None) -> str:
    if exc.errno == errno.ENOENT and target and os.path.isdir(os.path.dirname(target)):
        # the folder is there but makes no new files (a virtual file system such as procfs)
        return f"not writable: {os.path.dirname(target)} takes no new files"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.ENOENT:
        return "folder does not exist"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is not a folder"
    return exc.strerror or str(exc)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_folder(folder: str) -> None:
    # Makes the rename durable; not supported everywhere (Windows, some network file systems).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
