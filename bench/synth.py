"""Synthetic incident bundles of any size, in the vendors' shapes, for the benchmarks."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WORDS = [
    "checkout",
    "errors",
    "latency",
    "pool",
    "database",
    "deploy",
    "rollback",
    "config",
    "alert",
    "page",
    "customers",
    "5xx",
    "timeout",
    "retry",
    "cache",
    "queue",
    "replica",
    "failover",
    "dashboard",
    "metric",
    "rollout",
    "canary",
    "incident",
]


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _text(rnd: random.Random, n: int = 12) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def _slack(root: Path, n: int, rnd: random.Random, span: timedelta) -> None:
    users = [
        {
            "id": f"U{i:05d}",
            "name": f"user{i}",
            "real_name": f"User {i}",
            "is_bot": False,
            "profile": {"real_name": f"User {i}", "email": f"user{i}@example.com", "title": "SRE"},
        }
        for i in range(50)
    ]
    slack = root / "slack"
    (slack / "inc").mkdir(parents=True, exist_ok=True)
    (slack / "users.json").write_text(json.dumps(users))
    (slack / "channels.json").write_text(
        json.dumps(
            [
                {
                    "id": "C00001",
                    "name": "inc",
                    "created": 0,
                    "members": [],
                    "topic": {},
                    "purpose": {},
                }
            ]
        )
    )
    by_day: dict[str, list[dict[str, Any]]] = {}
    step = span / max(n, 1)
    for i in range(n):
        at = T0 + step * i
        m: dict[str, Any] = {
            "type": "message",
            "user": f"U{rnd.randrange(50):05d}",
            "text": _text(rnd),
            "ts": f"{at.timestamp():.6f}",
        }
        by_day.setdefault(at.strftime("%Y-%m-%d"), []).append(m)
    for day, msgs in by_day.items():
        (slack / "inc" / f"{day}.json").write_text(json.dumps(msgs))


def _alerts(root: Path, n: int, rnd: random.Random, span: timedelta) -> None:
    folder = root / "alertmanager"
    folder.mkdir(parents=True, exist_ok=True)
    per_file = 500
    step = span / max(n, 1)
    for f in range(0, n, per_file):
        alerts = []
        for i in range(f, min(n, f + per_file)):
            start = T0 + step * i
            alerts.append(
                {
                    "status": "firing",
                    "labels": {"alertname": f"Alert{i % 40}", "instance": f"host{i}"},
                    "annotations": {"summary": _text(rnd, 6)},
                    "startsAt": _iso(start),
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prom/graph",
                    "fingerprint": f"{i:016x}",
                }
            )
        payload = {
            "version": "4",
            "groupKey": "{}:{}",
            "status": "firing",
            "receiver": "r",
            "truncatedAlerts": 0,
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://am",
            "alerts": alerts,
        }
        (folder / f"batch-{f // per_file}.json").write_text(json.dumps(payload))


def _jira(root: Path, n: int, rnd: random.Random, span: timedelta) -> None:
    folder = root / "jira"
    folder.mkdir(parents=True, exist_ok=True)
    per_issue = 40
    step = span / max(n, 1)
    for k in range(0, n, per_issue):
        key = f"OPS-{k // per_issue + 1}"
        histories = [
            {
                "id": str(i),
                "created": (T0 + step * i).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                "author": {
                    "accountId": "acc-1",
                    "displayName": "User 1",
                    "emailAddress": "user1@example.com",
                },
                "items": [{"field": "status", "fromString": "Open", "toString": "In Progress"}],
            }
            for i in range(k, min(n, k + per_issue))
        ]
        issue = {
            "id": str(10000 + k),
            "key": key,
            "self": f"https://jira.example/rest/api/3/issue/{10000 + k}",
            "fields": {
                "summary": _text(rnd, 5),
                "created": (T0 + step * k).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                "issuetype": {"name": "Task"},
                "status": {"name": "Open"},
                "priority": {"name": "High"},
                "project": {"key": "OPS"},
                "reporter": {"accountId": "acc-1", "displayName": "User 1"},
            },
            "changelog": {
                "startAt": 0,
                "maxResults": len(histories),
                "total": len(histories),
                "histories": histories,
            },
        }
        (folder / f"{key}.json").write_text(json.dumps(issue))


def write(root: Path, events: int, *, seed: int = 7) -> Path:
    """A bundle with about `events` events: 60% Slack, 20% alerts, 20% Jira changes."""
    rnd = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    span = timedelta(hours=6)
    (root / "incident.yaml").write_text(
        f"id: BENCH-1\ntitle: synthetic\nwindow:\n  start: {_iso(T0 - timedelta(hours=1))}\n"
        f"  end: {_iso(T0 + span + timedelta(hours=1))}\n"
    )
    _slack(root, int(events * 0.6), rnd, span)
    _alerts(root, int(events * 0.2), rnd, span)
    _jira(root, events - int(events * 0.6) - int(events * 0.2), rnd, span)
    return root
