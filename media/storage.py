"""Files on disk, named by the sha256 of their bytes (`ab/cd/abcd…`): the same bytes twice are
one file. Written atomically (a temporary file in the same directory, then `os.replace`), so a
reader never sees half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Storage:
    root: Path

    def path_of(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, sha256: str, data: bytes, *, now: datetime) -> Path:
        """Write the file unless it is there, and stamp it with `now`: the orphan sweep keeps
        files stamped within its age, so a file an upload is about to use is never removed."""
        path = self.path_of(sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        stamp = now.timestamp()
        os.utime(path, (stamp, stamp))
        return path

    def read(self, sha256: str) -> bytes:
        return self.path_of(sha256).read_bytes()

    def digests(self) -> Iterator[tuple[str, float]]:
        """Every stored file's digest and its stamp (modification time)."""
        for entry in self._entries():
            if len(entry.name) == 64 and not entry.name.startswith("."):
                with contextlib.suppress(FileNotFoundError):
                    yield entry.name, entry.stat().st_mtime

    def remove_temporaries(self, *, before: datetime) -> int:
        """Remove half-written files a killed writer left, older than `before`."""
        removed = 0
        for entry in self._entries():
            if entry.name.startswith(".tmp-"):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < before.timestamp():
                        entry.unlink()
                        removed += 1
        return removed

    def _entries(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for first in self.root.iterdir():
            if len(first.name) != 2 or not first.is_dir():
                continue
            for second in first.iterdir():
                if second.is_dir():
                    yield from second.iterdir()

    def remove(self, sha256: str) -> bool:
        try:
            self.path_of(sha256).unlink()
        except FileNotFoundError:
            return False
        return True
