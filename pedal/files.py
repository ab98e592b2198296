"""Files in and out, safely.

Writes are atomic: a reader (or a power cut) sees the old file or the new one, never half of
either. Reads of files a user names are bounded: regular files only (a FIFO, a device or a
folder is refused before anything blocks), at most a given size, read whole before parsing.
Every file the pedal and its tools write, and every model, IR, preset and config they read,
goes through here."""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator

from .errors import PedalError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[str]:
    """A temporary path beside `path` for a writer that wants a file name (soundfile, torch);
    on a clean exit it is synced and renamed over `path`, on an error removed.

    `suffix` is the temporary file's extension (default: that of `path`): some writers pick
    the format by it."""
    path = os.path.realpath(path)          # through a link: the file it names is replaced
    if os.path.isdir(path):
        raise PedalError(path, "is a folder; give a file name")
    if os.path.lexists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        # a device, a FIFO or a socket: replacing it would not write "to" it
        raise PedalError(path, "exists and is not a regular file; refusing to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PedalError(path, "the folder it would go in does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-",
                               suffix=suffix if suffix is not None else os.path.basename(path))
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def fsync_dir(folder: str) -> None:
    """Make a rename or unlink in `folder` durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass            # some file systems refuse fsync on a folder; the rename still holds
    finally:
        os.close(fd)


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_regular(path: str | os.PathLike, max_bytes: int, what: str = "file",
                 error: type[PedalError] = PedalError) -> bytes:
    """The bytes of the regular file at `path`, at most max_bytes of them; `error` (a
    PedalError) naming the path otherwise: missing, unreadable, not a regular file, too
    large."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)       # a FIFO must not block here
    except FileNotFoundError:
        raise error(path, "no such file") from None
    except (OSError, ValueError, TypeError) as e:
        raise error(path, f"cannot read: {getattr(e, 'strerror', None) or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise error(path, f"is {kind}; expected a {what}")
        if st.st_size > max_bytes:
            raise error(path, f"{st.st_size} bytes is too large for a {what} "
                                   f"(at most {max_bytes})")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as e:
        raise error(path, f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:                                  # it grew while we read
        raise error(path, f"is too large for a {what} (at most {max_bytes} bytes)")
    return data
