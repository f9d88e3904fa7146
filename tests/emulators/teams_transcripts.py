"""The Graph emulator plus Teams online meeting transcripts.

`GET /v1.0/users/{id}/onlineMeetings?$filter=JoinWebUrl eq '…'` finds a meeting by its join
URL; `…/onlineMeetings/{id}/transcripts` lists callTranscripts (paged like every Graph list);
`…/transcripts/{id}/content` serves the WebVTT (`<v Speaker>` voice tags, Teams cue ids).
App-only access also needs an application access policy for the organizer (a 403 naming it
otherwise), and beyond the evaluation quota the content call is a 402, as Graph documents.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from tests.emulators.base import Request, Response
from tests.emulators.teams import GraphEmulator, graph_error
from tests.emulators.teams_tenant import TENANT, USERS

ORGANIZER = USERS["ana"][0]
MEETING = "MSo1N2Y5ZGFjYy03MWJmLTQ3NDMtYjQxMy01M2EdFGkdRWHJlQ"
JOIN_URL = (
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_INC2041%40thread.v2/0?context=%7b%7d"
)
TRANSCRIPT = "MSMjMCMjNzU3ODc2ZDYtOTcwMi00MDhkLWFkNDItOTE2ZDNmZjkwZGY4"
EARLIER = "MSMjMCMjZDAwYWU3NjUtNmM2Yi00NjQxLTgwMWQtMTkzMmFmMjEzNzdh"

BRIDGE_VTT = """WEBVTT

3f8a9c21-1c2e-4a5b-9d3e-2b1c0a9f8e7d/12-0
00:00:01.500 --> 00:00:04.200
<v Ana Ruiz>Thanks for joining, checkout is throwing errors.</v>

3f8a9c21-1c2e-4a5b-9d3e-2b1c0a9f8e7d/12-1
00:00:04.300 --> 00:00:07.000
<v Ana Ruiz>I'm the incident commander for this one.</v>

3f8a9c21-1c2e-4a5b-9d3e-2b1c0a9f8e7d/15-0
00:00:08.100 --> 00:00:12.900
<v Bo Chen>The pool config change is the trigger, I'm rolling it back.</v>

3f8a9c21-1c2e-4a5b-9d3e-2b1c0a9f8e7d/21-0
00:11:02.000 --> 00:11:05.500
<v Cy Park>Error rate is back to baseline.</v>
"""


def call_transcript(ident: str, created: str, ended: str, base: str) -> dict[str, Any]:
    url = f"{base}/users/{ORGANIZER}/onlineMeetings/{MEETING}/transcripts/{ident}/content"
    return {
        "id": ident,
        "meetingId": MEETING,
        "callId": "af630fe0-04d3-4559-8cf9-91fe45e36296",
        "contentCorrelationId": "bc842d7a-2f6e-4b18-a1c7-73ef91d5c8e3",
        "transcriptContentUrl": url,
        "createdDateTime": created,
        "endDateTime": ended,
        "meetingOrganizer": {
            "application": None,
            "device": None,
            "user": {
                "id": ORGANIZER,
                "displayName": None,
                "userIdentityType": "aadUser",
                "tenantId": TENANT,
            },
        },
    }


class TeamsTranscriptsEmulator(GraphEmulator):
    """One organizer's meeting with two transcripts: the incident bridge and an earlier one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy_users = {ORGANIZER}
        self.evaluation_exhausted = False
        self.content: dict[str, str] = {
            TRANSCRIPT: BRIDGE_VTT,
            EARLIER: BRIDGE_VTT.replace("checkout", "billing"),
        }
        base = r"/v1\.0/users/(?P<user>[^/]+)/onlineMeetings"
        self.route("GET", base, self.find_meeting)
        self.route("GET", base + r"/(?P<meeting>[^/]+)/transcripts", self.list_transcripts)
        self.route(
            "GET", base + r"/(?P<meeting>[^/]+)/transcripts/(?P<t>[^/]+)/content", self.get_content
        )

    def transcripts(self) -> list[dict[str, Any]]:
        return [
            call_transcript(
                EARLIER,
                "2024-04-30T09:00:02.0000000Z",
                "2024-04-30T09:30:00.0000000Z",
                self.graph_url,
            ),
            call_transcript(
                TRANSCRIPT,
                "2024-05-01T14:01:05.1234567Z",
                "2024-05-01T14:19:00.0000000Z",
                self.graph_url,
            ),
        ]

    def _guard(self, req: Request) -> Response | None:
        denied = self._auth(req, ("OnlineMeetingTranscript.Read.All",))
        if denied:
            return denied
        assert req.match is not None
        if req.match["user"] not in self.policy_users:
            return graph_error(403, "Forbidden", "No application access policy found for this app.")
        if "meeting" in req.match.groupdict() and unquote(req.match["meeting"]) != MEETING:
            return graph_error(404, "NotFound", "Online meeting not found.")
        return None

    def find_meeting(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        wanted = f"JoinWebUrl eq '{JOIN_URL}'"
        found = (
            [{"id": MEETING, "joinWebUrl": JOIN_URL, "subject": "INC-2041 bridge"}]
            if req.q("$filter") == wanted
            else []
        )
        return (
            200,
            {
                "@odata.context": f"{self.graph_url}/$metadata#users('{ORGANIZER}')/onlineMeetings",
                "value": found,
            },
            {},
        )

    def list_transcripts(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        return self._page(
            req, self.transcripts(), f"users('{ORGANIZER}')/onlineMeetings('{MEETING}')/transcripts"
        )

    def get_content(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        if self.evaluation_exhausted:
            return graph_error(
                402,
                "PaymentRequired",
                "Evaluation mode capacity for the month has exceeded. To continue beyond the evalution limits complete billing onboarding.",
            )
        assert req.match is not None
        text = self.content.get(unquote(req.match["t"]))
        if text is None:
            return graph_error(404, "NotFound", "Transcript not found.")
        return 200, text.encode("utf-8"), {"Content-Type": "text/vtt"}
