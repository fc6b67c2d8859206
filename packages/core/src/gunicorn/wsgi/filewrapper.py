"""``wsgi.file_wrapper`` (PEP 3333 "Optional Platform-Specific File Handling").

The wrapper is a plain iterable of blocks, so any server can send it. A driver that recognises
it (``type(result) is FileWrapper``) may instead hand ``filelike.fileno()`` to ``os.sendfile``;
that is only done without TLS and when the ``sendfile`` setting allows it.
"""

from __future__ import annotations

from typing import Any


class FileWrapper:
    """Iterate over ``filelike`` in ``blksize`` blocks; ``close()`` closes the file."""

    __slots__ = ("filelike", "blksize", "_close")

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        self._close = getattr(filelike, "close", None)

    def fileno(self) -> int | None:
        """The OS file descriptor of the wrapped file, or None when it has none (e.g. BytesIO)."""
        get = getattr(self.filelike, "fileno", None)
        if get is None:
            return None
        try:
            fd = get()
        except (OSError, ValueError):  # io.UnsupportedOperation derives from both
            return None
        return fd if isinstance(fd, int) and fd >= 0 else None

    def __getitem__(self, key: int) -> bytes:
        # The pre-iterator protocol some old WSGI code still relies on.
        data: bytes = self.filelike.read(self.blksize)
        if data:
            return data
        raise IndexError

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data: bytes = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    def close(self) -> None:
        if self._close is not None:
            self._close()
