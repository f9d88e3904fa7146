"""How many threads BLAS may use for a block of work.

Embedding a one-line query is many small products: a second thread only adds overhead (on the
2-core bench machine two OpenBLAS threads made it 4-50 times slower). A scan of the vector matrix
is bound by memory: a second thread helps when its core is idle (48 dimensions x 400k rows: 5.8 ms
on two threads, 8.5 ms on one) and hurts when other work has it (the whole query took 56-59 ms
with two threads on a busy machine, 31 ms with one). `idle_cores` picks by the load average.

One controller is built per process: building it inspects every loaded library (0.6 ms),
limiting threads with it costs microseconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any


@cache
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS to n threads inside the block (no limit when n is None or threadpoolctl is
    missing)."""
    ctl = _controller() if n is not None else None
    if ctl is None:
        yield
        return
    with ctl.limit(limits=n, user_api="blas"):
        yield


def idle_cores() -> int:
    """Cores not busy with other work, by the 1-minute load average (which counts this process
    too, as one); at least one."""
    cores = os.cpu_count() or 1
    try:
        others = max(0.0, os.getloadavg()[0] - 1.0)
    except OSError:  # not available on this platform
        return 1
    return max(1, min(cores, int(cores - others + 0.5)))
