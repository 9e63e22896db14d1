"""Atomic file output shared by every writer: a temporary file in the destination folder, then ``os.replace``.

A failure (exception, Ctrl-C) removes the temporary file, so no half-written output is ever left under the
final name and an existing file is replaced only once the new one is complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "atomic_write_bytes", "atomic_write_text", "same_file"]


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file (links resolved); path comparison when one is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


@contextlib.contextmanager
def atomic_output(
    dst: str | os.PathLike, mode: int = 0o644, *, prefix: str | None = None, suffix: str = ".tmp"
) -> Iterator[Path]:
    """Yield a temporary path next to ``dst``; on success it replaces ``dst``, on error it is removed.

    ``suffix`` lets encoders that pick the format from the extension see the final one; ``prefix`` (default
    ``.<name>.``) marks the temporary file as ours.
    """
    dst = Path(dst)
    folder = dst.parent if str(dst.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder {str(folder)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=prefix if prefix is not None else f".{dst.name}.", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        os.chmod(tmp, mode)
        yield Path(tmp)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(dst: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    with atomic_output(dst, mode) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(dst: str | os.PathLike, text: str, mode: int = 0o644) -> None:
    atomic_write_bytes(dst, text.encode("utf-8"), mode)
