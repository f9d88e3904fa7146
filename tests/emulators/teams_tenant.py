"""The sample tenant the Graph emulator serves: an incident channel with threads, bots, cards,
a quoted reply, an edit, a deletion and system events, and a bridge group chat, with members.

Times are minutes from T0 (2024-05-01 14:00 UTC); message ids are their epoch milliseconds, as
Graph's are.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

TENANT = "7d2c4f1e-1111-4a4a-9b9b-0123456789ab"
CLIENT_ID = "4b1f0e2d-2222-4c4c-8d8d-0123456789cd"
CLIENT_SECRET = "graph-test-secret"
TEAM = "b1a5c9d2-0000-4000-8000-000000000042"
CHANNEL = "19:inc2041checkout@thread.tacv2"
CHAT = "19:bridge2041@thread.v2"
ALL_ROLES = (
    "ChannelMessage.Read.All",
    "Channel.ReadBasic.All",
    "ChannelMember.Read.All",
    "Chat.Read.All",
    "ChatMember.Read.All",
    "OnlineMeetingTranscript.Read.All",
)
PROTECTED = (
    "Invoked API requires Protected API access in application-only context when not using "
    "Resource Specific Consent. Visit https://docs.microsoft.com/en-us/graph/teams-protected-apis "
    "for more details."
)
T0 = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
USERS = {
    "ana": ("a0000000-0000-4000-8000-00000000a001", "Ana Ruiz", "ana.ruiz@acme.io"),
    "bo": ("b0000000-0000-4000-8000-00000000b002", "Bo Chen", "bo.chen@acme.io"),
    "cy": ("c0000000-0000-4000-8000-00000000c003", "Cy Park", "cy.park@acme.io"),
}
APPS = {
    "grafana": ("6f000000-0000-4000-8000-0000000000f1", "Grafana"),
    "pagerduty": ("6f000000-0000-4000-8000-0000000000f2", "PagerDuty"),
}


def stamp(minutes: float) -> str:
    at = T0 + timedelta(minutes=minutes)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def mid(minutes: float) -> str:
    """Graph message ids are the creation time in epoch milliseconds."""
    return str(int((T0 + timedelta(minutes=minutes)).timestamp() * 1000))


def user(key: str) -> dict[str, Any]:
    uid, name, _ = USERS[key]
    return {
        "application": None,
        "device": None,
        "user": {"id": uid, "displayName": name, "userIdentityType": "aadUser", "tenantId": TENANT},
    }


def app(key: str) -> dict[str, Any]:
    aid, name = APPS[key]
    return {
        "application": {"id": aid, "displayName": name, "applicationIdentityType": "bot"},
        "device": None,
        "user": None,
    }


def message(
    minutes: float,
    sender: dict[str, Any] | None,
    content: str,
    *,
    reply_to: float | None = None,
    chat: str | None = None,
    content_type: str = "html",
    **extra: Any,
) -> dict[str, Any]:
    ident = mid(minutes)
    root = mid(reply_to) if reply_to is not None else ident
    body: dict[str, Any] = {
        "id": ident,
        "replyToId": mid(reply_to) if reply_to is not None else None,
        "etag": ident,
        "messageType": "message",
        "createdDateTime": stamp(minutes),
        "lastModifiedDateTime": stamp(minutes),
        "lastEditedDateTime": None,
        "deletedDateTime": None,
        "subject": None,
        "summary": None,
        "chatId": chat,
        "importance": "normal",
        "locale": "en-us",
        "webUrl": None
        if chat
        else (
            f"https://teams.microsoft.com/l/message/{CHANNEL.replace(':', '%3A').replace('@', '%40')}/{ident}"
            f"?groupId={TEAM}&tenantId={TENANT}&createdTime={ident}&parentMessageId={root}"
        ),
        "policyViolation": None,
        "eventDetail": None,
        "from": sender,
        "body": {"contentType": content_type, "content": content},
        "channelIdentity": None if chat else {"teamId": TEAM, "channelId": CHANNEL},
        "attachments": [],
        "mentions": [],
        "reactions": [],
    }
    body.update(extra)
    return body


def mention(n: int, text: str, key: str) -> dict[str, Any]:
    return {"id": n, "mentionText": text, "mentioned": user(key)}


def system(minutes: float, detail: dict[str, Any], *, chat: str | None = None) -> dict[str, Any]:
    return message(
        minutes,
        None,
        "<systemEventMessage/>",
        chat=chat,
        messageType="systemEventMessage",
        eventDetail=detail,
    )


def members(*keys: str) -> list[dict[str, Any]]:
    out = []
    for key in keys:
        uid, name, email = USERS[key]
        out.append(
            {
                "@odata.type": "#microsoft.graph.aadUserConversationMember",
                "id": base64.b64encode(f"member-{uid}".encode()).decode(),
                "roles": ["owner"] if key == "ana" else [],
                "displayName": name,
                "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
                "userId": uid,
                "email": email,
                "tenantId": TENANT,
            }
        )
    return out


def channel_threads() -> list[dict[str, Any]]:
    """Root messages of the incident channel, each with its replies (oldest first)."""
    card = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": "Incident #4217 acknowledged by Bo Chen",
                "weight": "bolder",
            },
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Service", "value": "checkout-api"},
                    {"title": "Urgency", "value": "high"},
                ],
            },
        ],
    }
    quote = {
        "messageId": mid(3),
        "messagePreview": "can you look at checkout?",
        "messageSender": user("ana"),
    }
    roots: list[tuple[dict[str, Any], list[dict[str, Any]]]] = [
        (message(-1440, user("bo"), "<p>deployed pool config v42 to payments-db</p>"), []),
        (
            message(
                2,
                app("grafana"),
                "<p><strong>[FIRING:1]</strong> CheckoutErrorRate</p><p>error rate 7% on checkout-api</p>",
            ),
            [],
        ),
        (
            message(
                3,
                user("ana"),
                '<p><at id="0">Bo</at>&nbsp;<at id="1">Chen</at> can you look at checkout? I\'ll be IC</p>',
                mentions=[mention(0, "Bo", "bo"), mention(1, "Chen", "bo")],
            ),
            [
                message(4, user("bo"), "looking", reply_to=3, content_type="text"),
                message(
                    6,
                    user("bo"),
                    "<p>pool exhausted on payments-db</p>",
                    reply_to=3,
                    lastEditedDateTime=stamp(7),
                    lastModifiedDateTime=stamp(7),
                ),
                message(8, user("ana"), "<p>rolling back the pool config</p>", reply_to=3),
                message(
                    9,
                    user("cy"),
                    "",
                    reply_to=3,
                    deletedDateTime=stamp(9.5),
                    lastModifiedDateTime=stamp(9.5),
                ),
                message(11, user("cy"), "<p>rollback is at 50%</p>", reply_to=3),
            ],
        ),
        (
            system(
                5,
                {
                    "@odata.type": "#microsoft.graph.membersAddedEventMessageDetail",
                    "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
                    "members": [
                        {"id": USERS["cy"][0], "displayName": None, "userIdentityType": "aadUser"}
                    ],
                    "initiator": user("ana"),
                },
            ),
            [],
        ),
        (
            message(
                10,
                app("pagerduty"),
                '<attachment id="card1"></attachment>',
                attachments=[
                    {
                        "id": "card1",
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "contentUrl": None,
                        "content": json.dumps(card),
                        "name": None,
                        "thumbnailUrl": None,
                    }
                ],
            ),
            [],
        ),
        (
            message(
                12,
                user("cy"),
                f'<attachment id="{mid(3)}"></attachment><p>rollback done, errors dropping</p>',
                attachments=[
                    {
                        "id": mid(3),
                        "contentType": "messageReference",
                        "contentUrl": None,
                        "content": json.dumps(quote),
                        "name": None,
                        "thumbnailUrl": None,
                    }
                ],
                reactions=[
                    {"reactionType": "like", "createdDateTime": stamp(13), "user": user("ana")}
                ],
            ),
            [message(14, user("bo"), "<p>confirmed on the dashboard</p>", reply_to=12)],
        ),
        (
            system(
                16,
                {
                    "@odata.type": "#microsoft.graph.callEndedEventMessageDetail",
                    "callId": "c0ffee00-0000-4000-8000-000000000001",
                    "callDuration": "PT13M20S",
                    "callEventType": "meeting",
                    "callParticipants": [{"participant": user("ana")}, {"participant": user("bo")}],
                    "initiator": user("ana"),
                },
            ),
            [],
        ),
        (
            message(
                20,
                user("ana"),
                "<p>resolved: errors back to baseline. Postmortem to follow.</p>",
                attachments=[
                    {
                        "id": "f1",
                        "contentType": "reference",
                        "contentUrl": "https://acme.sharepoint.com/x/grafana-checkout.png",
                        "content": None,
                        "name": "grafana-checkout.png",
                        "thumbnailUrl": None,
                    }
                ],
            ),
            [],
        ),
    ]
    roots += [
        (message(21 + i, user(k), f"<p>follow-up note {i}</p>"), [])
        for i, k in enumerate(["bo", "cy", "ana", "bo"])
    ]
    out = []
    for root, replies in roots:
        out.append({**root, "replies": replies})
    return out


def chat_messages() -> list[dict[str, Any]]:
    lines = [
        (-60, "bo", "unrelated chatter before the incident"),
        (1, "ana", "bridge is open"),
        (2.5, "bo", "joining"),
        (5, "cy", "I see 5xx on checkout"),
        (7.5, "ana", "Bo has the db; Cy, watch the error rate"),
        (13, "bo", "rollback done"),
        (15, "cy", "error rate under 1%"),
        (19, "ana", "closing the bridge"),
    ]
    out = [message(m, user(k), f"<p>{t}</p>", chat=CHAT) for m, k, t in lines]
    out.append(
        system(
            17,
            {
                "@odata.type": "#microsoft.graph.chatRenamedEventMessageDetail",
                "chatId": CHAT,
                "chatDisplayName": "INC-2041 bridge (resolved)",
                "initiator": user("ana"),
            },
            chat=CHAT,
        )
    )
    return out


@dataclass
class Tenant:
    """What the emulated tenant holds."""

    channels: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    chats: dict[str, dict[str, Any]] = field(default_factory=dict)


def sample_tenant() -> Tenant:
    tenant = Tenant()
    tenant.channels[(TEAM, CHANNEL)] = {
        "channel": {
            "id": CHANNEL,
            "createdDateTime": "2024-05-01T13:58:00Z",
            "displayName": "inc-2041-checkout",
            "description": "Checkout errors",
            "membershipType": "standard",
            "email": "",
            "webUrl": f"https://teams.microsoft.com/l/channel/{CHANNEL}/inc-2041-checkout?groupId={TEAM}&tenantId={TENANT}",
            "tenantId": TENANT,
        },
        "threads": channel_threads(),
        "members": members("ana", "bo", "cy"),
    }
    tenant.chats[CHAT] = {
        "chat": {
            "id": CHAT,
            "topic": "INC-2041 bridge",
            "createdDateTime": "2024-05-01T13:59:00Z",
            "lastUpdatedDateTime": "2024-05-01T14:19:00Z",
            "chatType": "group",
            "webUrl": None,
            "tenantId": TENANT,
        },
        "messages": chat_messages(),
        "members": members("ana", "bo", "cy"),
    }
    return tenant
