"""The one way fsmcheck writes a file: atomically, keeping what was there.

Every command that writes (``generate``, ``report``, ``render``, ``export``,
``diff --html``, ``verify --sarif/--trace-dir``, ``check-trace --sarif``,
``run-pack -o``, ``mutate``'s killing-order cache) goes through
:func:`write_file` / :func:`write_files` / :func:`output_dir`:

- **All or nothing.** The data is written to an *unnamed* file in the target's
  directory (Linux ``O_TMPFILE``), which gets a name only once it is complete:
  it is linked under a temporary name and renamed over the target at once. A
  run killed while writing (SIGKILL included: no handler runs) leaves nothing
  in the output folder -- the kernel frees an unnamed file when its last
  descriptor closes. A temporary *directory* elsewhere would not do: a rename
  across file systems is a copy, not atomic; and a named temporary in the
  folder is what a killed run used to leave behind (issue 23: up to hundreds
  of MB). On a file system without ``O_TMPFILE`` the temporary is named
  ``.fsmcheck-tmp.PID.*`` and the next write into that folder removes those
  whose process is gone.
- **What was there stays what it was**: overwriting keeps the file's
  permission bits (a 0600 output stays 0600; a new file gets 0666 less the
  umask), and a symbolic link is written through, to its target (the link
  stays a link).
- **One diagnostic**: a path under a regular file, a read-only or full file
  system, a missing permission -- any OSError -- is an :class:`OutputError`
  (``PATH:1: <output>: cannot write: REASON``; exit 2 in every command, by the
  CLI group's handler of :class:`~fsmcheck.inputs.InputError`), and nothing
  partial is left.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from .inputs import Diagnostic, InputError

__all__ = ["OutputError", "check_output", "output_dir", "write_file", "write_files"]

_TMP_PREFIX = ".fsmcheck-tmp."
_TMP_NAME = re.compile(re.escape(_TMP_PREFIX) + r"(\d+)\.")

#: Directories already swept of stale temporaries by this process.
_SWEPT: set[str] = set()


class OutputError(InputError, OSError):
    """An output that cannot be written: one :class:`~fsmcheck.inputs.Diagnostic`
    ``PATH:1: <output>: cannot write: REASON``. Also an :class:`OSError`, so
    callers that treat a write as optional (a cache) still catch it."""

    def __init__(self, path, reason: str):
        InputError.__init__(self, [Diagnostic(str(path), 1, "<output>", f"cannot write: {reason}")])
        self.path = str(path)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_output(path, *, directory: bool = False) -> None:
    """Refuse, before any work, an output that cannot be written: a
    directory where a file goes (or a file where a directory goes), a
    regular file on the way, a read-only file system or a folder without
    write permission. Creates nothing. (A full file system shows only when
    writing: :func:`write_file` reports it then, leaving nothing behind.)

    Args:
        path: the output file, or directory when ``directory`` is true.

    Raises:
        OutputError: the output cannot be written, saying why.
    """
    p = Path(path)
    if not directory and p.is_symlink():
        p = Path(os.path.realpath(p))
    if not directory and p.is_dir():
        raise OutputError(path, "it is a directory")
    if directory and p.exists() and not p.is_dir():
        raise OutputError(path, "it exists and is not a directory")
    folder = p if directory else p.parent
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(path, f"{existing} is not a directory")
    try:
        read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        raise OutputError(path, f"{existing} is on a read-only file system")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(path, f"no permission to write in {existing}")


def output_dir(directory) -> Path:
    """Create ``directory`` (and its parents) if missing and check that a
    file can be created in it, before a long run writes there.

    Returns:
        the directory as a :class:`~pathlib.Path`.

    Raises:
        OutputError: it cannot be created (a regular file on the way, a
            read-only file system, no permission) or is not writable.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = _open_temporary(directory, 0o600)
        os.close(fd)
        if name is not None:
            os.unlink(name)
    except OSError as exc:
        raise OutputError(directory, _reason(exc)) from None
    return directory


def write_file(target, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8 with ``\\n`` line ends, or bytes) to
    ``target`` all at once (see the module docstring): the old file or the
    new one, never a part; the old file's permission bits kept; a symbolic
    link written through to its target. Creates missing parent directories.

    Returns:
        ``target`` as given (a :class:`~pathlib.Path`).

    Raises:
        OutputError: the file cannot be written (nothing is left behind).
    """
    target = Path(target)
    real = Path(os.path.realpath(target)) if target.is_symlink() else target
    payload = data if isinstance(data, bytes) else data.encode("utf-8")
    try:
        if real.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        real.parent.mkdir(parents=True, exist_ok=True)
        _sweep(real.parent)
        try:
            mode = os.stat(real).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        _write_atomically(real, payload, mode)
    except OSError as exc:
        raise OutputError(target, _reason(exc)) from None
    return target


def write_files(directory, files: dict[str, str | bytes]) -> list[Path]:
    """Write ``{name: data}`` into ``directory``, each file with
    :func:`write_file`, in name order. Returns the written paths.

    Raises:
        OutputError: as :func:`write_file` (files written before stay).
    """
    return [write_file(Path(directory) / name, data) for name, data in sorted(files.items())]


def _write_atomically(real: Path, payload: bytes, mode: int) -> None:
    fd, name = _open_temporary(real.parent, mode)
    try:
        os.fchmod(fd, mode)  # exact bits: the umask applied to open()'s mode
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        if name is None:  # give the complete unnamed file a name, then move it into place
            name = _link_unnamed(fd, real)
            if name is None:  # no linking through /proc here: write it again, named
                os.close(fd)
                fd, name = _open_temporary(real.parent, mode, unnamed=False)
                os.fchmod(fd, mode)
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view):]
        os.replace(name, real)
        name = None
    finally:
        os.close(fd)
        if name is not None:
            try:
                os.unlink(name)
            except OSError:
                pass


def _link_unnamed(fd: int, real: Path) -> str | None:
    """Link the unnamed file ``fd`` into ``real``'s folder under a temporary
    name (linkat with AT_SYMLINK_FOLLOW on /proc/self/fd/FD: plain link()
    would link the /proc symlink itself); None where that is refused."""
    name = f"{_TMP_PREFIX}{os.getpid()}.{os.urandom(4).hex()}.{real.name}"
    folder = os.open(real.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=folder, follow_symlinks=True)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.ENOENT, errno.EPERM, errno.EACCES, errno.EOPNOTSUPP):
            return None
        raise
    finally:
        os.close(folder)
    return str(real.parent / name)


def _open_temporary(directory: Path, mode: int, *, unnamed: bool = True) -> tuple[int, str | None]:
    """``(fd, None)``: an unnamed file in ``directory`` (``O_TMPFILE``), or
    ``(fd, name)`` of a named one where the file system has no unnamed files
    (or /proc is absent, which linking an unnamed file needs)."""
    flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    tmpfile = getattr(os, "O_TMPFILE", 0)
    if unnamed and tmpfile and os.path.isdir("/proc/self/fd"):
        try:
            return os.open(directory, flags | tmpfile, mode), None
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    name = str(directory / f"{_TMP_PREFIX}{os.getpid()}.{os.urandom(6).hex()}")
    return os.open(name, flags | os.O_CREAT | os.O_EXCL, mode), name


def _sweep(directory: Path) -> None:
    """Remove the named temporaries of fsmcheck runs that are gone (killed
    while writing on a file system without unnamed files), once per
    directory and process."""
    key = str(directory)
    if key in _SWEPT:
        return
    _SWEPT.add(key)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = _TMP_NAME.match(name)
        if match and not _alive(int(match.group(1))):
            try:
                os.unlink(directory / name)
            except OSError:
                pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by another user
    return True


def _umask() -> int:
    """The process's umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
