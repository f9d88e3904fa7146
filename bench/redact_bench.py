"""Print how fast retro.safety.redact handles 100k short incident-chat messages.

Usage: python bench/redact_bench.py [count]
       python bench/redact_bench.py --texts    # every string of the sample bundle and shared fixtures
       python bench/redact_bench.py --corpus   # recall and false-positive rate on the test corpus
"""

from __future__ import annotations

import json
import random
import sys
import time
import timeit
from pathlib import Path

from retro.safety.redact import Redactor

BENIGN = [
    "checkout 503s since {t}, p99 {n}ms on checkout-api-7d9f8b6c5-x2x9z",
    "rolled back v1.24.{n} -> v1.24.2 (INC-{n}), <@U024BE7LH> is IC",
    "error rate {p}% at 2024-05-01T{t}:27Z on 10.0.3.17:8080",
    "PagerDuty PIJ90N7 acked by <@U024BE7LH>, looking at grafana",
    "[FIRING:1] HighErrorRate checkout (severity=page, namespace=checkout)",
    "deploy 3f9a2b1 finished in {n}s; request id 550e8400-e29b-41d4-a716-446655440000",
    "the token is rotated, the key is in vault; no action needed",
    "retries {n}, queue depth {n}, burn rate 14.4x over 1h",
    "Mitigated at {t}; error rate back under 0.1%",
    "https://grafana.example.com/d/abc123/checkout?orgId=1&from=now-6h",
]
SECRETS = [
    "ping alice@example.com about it",
    "call +1 415 555 0100 if paging fails",
    "DATABASE_URL=postgres://app:S3cretPass@db.internal:5432/orders",
    "curl -H 'Authorization: Bearer abc123def456ghi' https://api",
    "password=hunter2 was in the runbook",
]


def messages(count: int, secret_share: float = 0.05) -> list[str]:
    """Short chat lines, secret_share of them with something to redact."""
    rng = random.Random(42)
    out = []
    for _ in range(count):
        pool = SECRETS if rng.random() < secret_share else BENIGN
        out.append(
            rng.choice(pool).format(
                t=f"{rng.randrange(24):02}:{rng.randrange(60):02}",
                n=rng.randrange(1, 5000),
                p=round(rng.random() * 20, 1),
            )
        )
    return out


ROOT = Path(__file__).resolve().parents[1]


def _strings(obj: object) -> list[str]:
    if isinstance(obj, str):
        return [obj] if len(obj) > 15 and " " in obj else []
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def vendor_texts() -> list[str]:
    """Real text: every sentence-like string in the sample bundle and ../shared/fixtures."""
    files = [*(ROOT / "retro" / "sample" / "bundle").rglob("*.json")]
    files += [*(ROOT.parent / "shared" / "fixtures").rglob("*.json")]
    texts: list[str] = []
    for path in sorted(files):
        try:
            texts += _strings(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, UnicodeDecodeError):
            continue
    return texts


def timed(lines: list[str], label: str) -> None:
    best = float("inf")
    for _ in range(3):
        redactor = Redactor()
        start = time.process_time()  # CPU time: other processes on the machine do not count
        for line in lines:
            redactor.redact(line)
        best = min(best, time.process_time() - start)
    per = best / len(lines) * 1e6
    print(f"{len(lines)} {label} in {best:.2f}s CPU ({per:.1f} µs each); found {redactor.counts}")


def corpus() -> None:
    """Recall on tests/redact_corpus.py's secrets, false positives on its innocent sentences."""
    sys.path.insert(0, str(ROOT))
    from tests.redact_corpus import INNOCENT, SECRETS

    missed = [c for c in SECRETS if any(v in Redactor().redact(c.text) for v in c.secrets)]
    flagged = [t for t in INNOCENT if Redactor().redact(t) != t]
    print(f"recall: {len(SECRETS) - len(missed)}/{len(SECRETS)} formats fully redacted")
    for case in missed:
        print(f"  missed {case.fmt}: {Redactor().redact(case.text)!r}")
    print(f"false positives: {len(flagged)}/{len(INNOCENT)} innocent sentences changed")
    for text in flagged:
        print(f"  changed: {Redactor().redact(text)!r}")


def main() -> None:
    if sys.argv[1:] == ["--corpus"]:
        corpus()
        return
    # how slow this machine is: about 8-10 µs on a current laptop with CPython 3.11
    calibration = min(timeit.repeat("sum(range(1000))", number=2000, repeat=3)) / 2000 * 1e6
    print(f"calibration: sum(range(1000)) takes {calibration:.1f} µs here")
    if sys.argv[1:] == ["--texts"]:
        texts = vendor_texts()
        timed(texts * max(1, 20_000 // max(1, len(texts))), "vendor texts")
        return
    timed(messages(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000), "messages")


if __name__ == "__main__":
    main()
