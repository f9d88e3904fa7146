"""The one retry policy every HTTP client in retro uses, built on tenacity.

What is retried is decided by the caller, who raises `Retryable` from inside an attempt: a
429, a 5xx, a dropped connection or a timeout on a read. How long to wait is decided here:
the server's `Retry-After` when it sent one (capped at `max_wait`), otherwise exponential
back-off from `backoff` seconds (also capped), with up to 50% jitter so that many clients do
not retry in step. After `retries` retries the last `Retryable` is handed to `give_up`, which
turns it into the one-line error the user sees.

Clients whose SDK has its own retry handler (slack_sdk, openai) configure it from the same
numbers (`RetryPolicy`) instead of wrapping it in a second loop. Tests replace the module's
`sleep` (or pass one) so that no test waits for real.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import NoReturn, TypeVar

T = TypeVar("T")


def sleep(seconds: float) -> None:
    """Wait between attempts. Tests replace `retro.retry.sleep` so that nothing waits for real."""
    time.sleep(seconds)


class Retryable(Exception):
    """Raised inside an attempt to ask for another one.

    `retry_after` is the wait the server asked for, in seconds, when it said; `detail` is what
    went wrong, for the final error message; `response` is the last answer, if there was one.
    """

    def __init__(
        self,
        detail: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        response: object = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        self.status = status
        self.response = response  # the last answer, for the error built when retries run out


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait between attempts."""

    retries: int = 3
    backoff: float = 1.0
    max_wait: float = 60.0
    jitter: float = 0.5  # up to this share of extra wait on back-off (never on Retry-After)
    sleep: Callable[[float], None] | None = field(default=None, compare=False, repr=False)
    random: Callable[[], float] = field(default=_random.random, compare=False, repr=False)

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1 for the first retry)."""
        if retry_after is not None:
            return min(self.max_wait, max(0.0, retry_after))
        base = self.backoff * 2 ** (attempt - 1)
        return min(self.max_wait, base * (1.0 + self.jitter * self.random()))

    def run(self, attempt: Callable[[], T], *, give_up: Callable[[Retryable], NoReturn]) -> T:
        """Call `attempt` until it returns, retrying each `Retryable` up to `retries` times."""
        from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hint = exc.retry_after if isinstance(exc, Retryable) else None
            return self.wait(state.attempt_number, hint)

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait,
            retry=retry_if_exception_type(Retryable),
            sleep=self.sleep or (lambda seconds: sleep(seconds)),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except Retryable as exc:
            give_up(exc)


def retry_after(
    headers: Mapping[str, str],
    names: tuple[str, ...] = ("retry-after",),
    now: Callable[[], float] = time.time,
) -> float | None:
    """Seconds to wait from the first rate-limit header present (seconds or an HTTP date)."""
    for name in names:
        value = headers.get(name)
        if not value:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now())
            except (TypeError, ValueError, IndexError):
                continue
    return None


RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses worth another attempt on an idempotent request."""
