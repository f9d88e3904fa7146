"""One filing or sync run per draft at a time: an advisory lock on a file beside the draft.

Two `retro file-actions` runs on one draft would each find an item unfiled and each create
it. The lock (`.<draft name>.retro-lock`, in the draft's folder) is held from reading the draft
until its last write-back; a second run waits for it, then re-reads the draft and finds the
items tracked. The operating system releases the lock when its holder dies (even by SIGKILL),
so a crashed run never blocks the next one; the lock file is removed on release.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from retro.errors import ConfigError

LOCK_WAIT_S = 600.0  # how long a run waits for another run on the same draft
_POLL_S = 0.05

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def lock_path(draft: Path) -> Path:
    return draft.with_name(f".{draft.name}.retro-lock")


def _same_file(fd: int, path: Path) -> bool:
    """The lock file we hold is still the one at `path` (its last holder may have removed it)."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


@contextmanager
def draft_lock(
    draft: Path, *, log: Callable[[str], None], wait_s: float = LOCK_WAIT_S
) -> Iterator[None]:
    """Hold the draft's lock for the body of the `with`; wait up to `wait_s` for it."""
    path = lock_path(draft)
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the lock file {path}: {exc.strerror}",
                hint="file-actions needs write access to the draft's folder",
            ) from None
        if _try_lock(fd) and _same_file(fd, path):
            break
        os.close(fd)
        if time.monotonic() >= deadline:
            raise ConfigError(
                f"another retro run has held the lock on {draft} for over {wait_s:.0f} s",
                hint=f"wait for it to finish; if none is running, delete {path}",
            )
        if not told:
            log(f"another retro run is working on {draft}; waiting for it to finish")
            told = True
        time.sleep(_POLL_S)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still holding it: a waiter then sees a new file, not ours
        os.close(fd)
