"""A small Slack workspace that the Slack tests build: users, channels and incident messages.

The same messages serve file mode (written as an export) and live mode (loaded into the
emulator), so a harvest can be compared with a hand-made export of the same data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.slack import SlackConnector
from retro.connector import Doc, ReadContext
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from tests.emulators.slack import SlackWorkspace

T0 = 1714572000  # 2024-05-01T14:00:00Z
INC = "C0INC042"
RANDOM = "C0RANDOM"
TOKEN = "xoxb-test-token"


def ts(offset: int, micro: int = 100) -> str:
    return f"{T0 + offset}.{micro:06d}"


def key(offset: int, channel: str = INC) -> str:
    return f"slack:{channel}:{ts(offset)}"


# --- a small workspace ------------------------------------------------------------------------


def _user(
    uid: str, name: str, real: str, display: str, title: str = "", bot: bool = False
) -> dict[str, Any]:
    profile = {
        "display_name": display,
        "real_name": real,
        "email": f"{name}@acme.io",
        "title": title,
    }
    return {
        "id": uid,
        "name": name,
        "real_name": real,
        "is_bot": bot,
        "deleted": False,
        "profile": profile,
    }


def users() -> list[dict[str, Any]]:
    return [
        _user("U01ALICE", "alice", "Alice Ng", "alice", "SRE"),
        _user("U02BOB", "bob", "Bob Ruiz", "bobby", "Backend engineer"),
        _user("U03CAROL", "carol", "Carol Diaz", "", "Incident commander"),
        _user("U0GRAFANA", "grafana", "Grafana", "Grafana", bot=True),
    ]


def channels() -> list[dict[str, Any]]:
    base = {"created": T0 - 86400, "is_channel": True, "is_private": False, "is_member": True}
    return [
        {**base, "id": INC, "name": "inc-42-checkout", "topic": {"value": "Checkout 500s"}},
        {**base, "id": RANDOM, "name": "random", "topic": {"value": ""}},
    ]


def msg(offset: int, user: str | None, text: str, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"type": "message", "ts": ts(offset), "text": text, **extra}
    if user:
        m["user"] = user
    return m


def incident_messages() -> list[dict[str, Any]]:
    """#inc-42-checkout as conversations.history/replies would show it (no thread counters)."""
    attachment = {
        "fallback": "[FIRING:1] CheckoutErrors",
        "title": "[FIRING:1] CheckoutErrors",
        "text": "error rate &gt; 5% on <https://grafana.acme.io/d/1|checkout>",
    }
    rich = {
        "type": "rich_text",
        "elements": [
            {
                "type": "rich_text_section",
                "elements": [
                    {"type": "text", "text": "see "},
                    {"type": "user", "user_id": "U02BOB"},
                    {"type": "text", "text": " and "},
                    {"type": "link", "url": "https://status.acme.io", "text": "status"},
                ],
            }
        ],
    }
    return [
        msg(
            0,
            None,
            "",
            subtype="bot_message",
            bot_id="B0GRAF",
            username="Grafana",
            attachments=[attachment],
        ),
        msg(30, "U03CAROL", "set the channel topic: Checkout 500s", subtype="channel_topic"),
        msg(
            60,
            "U01ALICE",
            "<!here> checkout is 500ing, see <https://grafana.acme.io/d/1|dashboard> &amp; <#C0RANDOM>",
            reactions=[{"name": "eyes", "count": 2, "users": ["U02BOB", "U03CAROL"]}],
        ),
        msg(90, "U03CAROL", "<@U03CAROL> has joined the channel", subtype="channel_join"),
        msg(
            120, "U02BOB", "<@U01ALICE> looking, see <#C0INC042|inc-42-checkout>", thread_ts=ts(60)
        ),
        msg(
            200,
            "U02BOB",
            "logs attached",
            subtype="file_share",
            files=[{"id": "F01", "name": "err.log", "title": "checkout errors"}],
        ),
        msg(
            300,
            "U01ALICE",
            "mitigated, mail <mailto:oncall@acme.io|oncall@acme.io>",
            edited={"user": "U01ALICE", "ts": ts(400)},
        ),
        msg(360, "U01ALICE", "", blocks=[rich]),
        msg(370, "USLACKBOT", "Reminder: update the status page."),
        msg(380, "U03CAROL", "<!subteam^S0SRE|@sre-team> paged at <!date^1714572000^{time}|2pm>"),
        msg(36060, "U03CAROL", "postmortem tomorrow", thread_ts=ts(60)),
    ]


def random_messages() -> list[dict[str, Any]]:
    return [msg(100, "U02BOB", "lunch?"), msg(150, "U01ALICE", "sure")]


def export_messages() -> list[dict[str, Any]]:
    """The export's view: the thread root carries reply counters; an edit and a deletion event."""
    out = []
    for m in incident_messages():
        if m["ts"] == ts(60):
            m = {**m, "thread_ts": ts(60), "reply_count": 2, "reply_users": ["U02BOB", "U03CAROL"]}
        out.append(m)
    out.append(msg(320, "U02BOB", "rollback startd"))
    changed = {"type": "message", "user": "U02BOB", "text": "rollback started", "ts": ts(320)}
    changed["edited"] = {"user": "U02BOB", "ts": ts(330)}
    out.append(
        {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "ts": ts(330),
            "message": changed,
        }
    )
    out.append(
        {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "ts": ts(340),
            "deleted_ts": ts(5),
        }
    )
    return out


def _day(m: dict[str, Any]) -> str:
    return datetime.fromtimestamp(float(m["ts"]), tz=UTC).strftime("%Y-%m-%d")


def write_export(
    root: Path, messages: list[dict[str, Any]] | None = None, *, with_users: bool = True
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if with_users:
        (root / "users.json").write_text(json.dumps(users()))
    (root / "channels.json").write_text(json.dumps(channels()))
    (root / "dms.json").write_text("[]")
    for name, items in (
        ("inc-42-checkout", messages or export_messages()),
        ("random", random_messages()),
    ):
        days: dict[str, list[dict[str, Any]]] = {}
        for m in items:
            days.setdefault(_day(m), []).append(m)
        for day, day_items in days.items():
            (root / name).mkdir(exist_ok=True)
            (root / name / f"{day}.json").write_text(json.dumps(day_items))
    return root


def docs_from(root: Path, base: Path | None = None) -> list[Doc]:
    base = base or root
    return [
        Doc(rel=p.relative_to(base).as_posix(), data=json.loads(p.read_text()), path=p)
        for p in sorted(root.rglob("*.json"))
    ]


def read(
    docs: list[Doc], *, lenient: bool = False, **meta: Any
) -> tuple[list[TimelineEvent], SourceReport]:
    report = SourceReport(name="slack")
    ctx = ReadContext(
        bundle=Path("."), incident=IncidentMeta(id="INC-42", **meta), report=report, lenient=lenient
    )
    connector = SlackConnector()
    claimed = [d for d in docs if connector.claims(d)]
    return list(connector.read_bundle(claimed, ctx)), report


def by_key(events: list[TimelineEvent]) -> dict[str, TimelineEvent]:
    return {e.key: e for e in events}


def workspace() -> SlackWorkspace:
    private = {
        "id": "C0SECRET",
        "name": "secret",
        "created": T0,
        "is_private": True,
        "is_member": False,
    }
    outsider = {**channels()[1], "id": "C0OUTSIDE", "name": "outside", "is_member": False}
    return SlackWorkspace(
        users=users(),
        channels=[*channels(), private, outsider],
        messages={INC: incident_messages(), RANDOM: random_messages()},
    )
