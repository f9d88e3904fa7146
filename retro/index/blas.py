"""How many threads BLAS may use for a block of work.

A query is small: on the 2-core bench machine two OpenBLAS threads made a one-line embedding
4-50 times slower and a scan of the vector matrix slower too, since the scan is bound by memory,
not arithmetic. One controller is built per process: building it inspects every loaded library
(0.6 ms), limiting threads with it costs microseconds.
"""

from __future__ import annotations

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
