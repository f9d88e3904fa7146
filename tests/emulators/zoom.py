"""A Zoom emulator: Server-to-Server OAuth tokens, cloud recordings and transcript downloads.

It answers the way Zoom does: `POST /oauth/token?grant_type=account_credentials&account_id=…`
with HTTP Basic client credentials returns a bearer token and its granted scopes;
`GET /v2/meetings/{meetingId}/recordings` takes a meeting id or a UUID (double-encoded when
it starts with "/" or holds "//"); `GET /v2/users/{userId}/recordings` pages by
`next_page_token` (`page_plan` makes pages short or empty while a token is still given) and
filters by `from`/`to` dates; a file's `download_url` needs the bearer token and redirects
(302) to the storage that serves the WebVTT. Errors carry Zoom's `{"code", "message"}` body.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from tests.emulators.base import Emulator, Request, Response

ACCOUNT_ID = "acc-retro-42"
CLIENT_ID = "zoom-client-id"
CLIENT_SECRET = "zoom-client-secret"
HOST = "host@acme.io"
SCOPES = (
    "cloud_recording:read:list_recording_files:admin",
    "cloud_recording:read:list_user_recordings:admin",
)
MEETING_ID = 85746352910
MEETING_UUID = "/ajXp112QmuoKj4854875=="  # starts with "/": must be double-encoded
RECORDING_START = "2024-05-01T14:01:00Z"

BRIDGE_VTT = """WEBVTT

1
00:00:02.100 --> 00:00:05.900
Ana Ruiz: Okay, I'm opening the bridge for checkout errors.

2
00:00:06.000 --> 00:00:09.400
Ana Ruiz: Bo, can you take the database side?

3
00:00:10.200 --> 00:00:14.800
Bo Chen: Yes. Pool connections on payments-db are maxed out.

4
00:00:15.000 --> 00:00:19.500
Cy Park: Error rate on checkout is at seven percent.

5
00:01:30.000 --> 00:01:36.200
Bo Chen: The pool config change from this morning is the trigger.

6
00:01:36.400 --> 00:01:41.000
Bo Chen: I'm rolling it back now.

7
00:09:58.000 --> 00:10:03.500
Cy Park: Errors are dropping, under one percent now.

8
00:17:40.000 --> 00:17:44.000
Ana Ruiz: We're resolved. Closing the bridge.
"""


def vtt_file(
    file_id: str, meeting_uuid: str, start: str, file_type: str, base: str
) -> dict[str, Any]:
    ext = {"TRANSCRIPT": "VTT", "CC": "VTT", "MP4": "MP4", "CHAT": "TXT"}[file_type]
    kind = {
        "TRANSCRIPT": "audio_transcript",
        "CC": "closed_caption",
        "MP4": "shared_screen_with_speaker_view",
        "CHAT": "chat_file",
    }[file_type]
    end = (datetime.fromisoformat(start.replace("Z", "+00:00")) + timedelta(minutes=18)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    return {
        "id": file_id,
        "meeting_id": meeting_uuid,
        "recording_start": start,
        "recording_end": end,
        "file_type": file_type,
        "file_extension": ext,
        "file_size": 2048,
        "play_url": f"https://acme.zoom.us/rec/play/{file_id}",
        "download_url": f"{base}/rec/download/{file_id}",
        "status": "completed",
        "recording_type": kind,
    }


def sample_meetings(base: str) -> list[dict[str, Any]]:
    """Three recorded meetings of the host: the bridge (with a transcript), a second call on
    the same day with a video only, and one the day before."""
    bridge = {
        "uuid": MEETING_UUID,
        "id": MEETING_ID,
        "account_id": ACCOUNT_ID,
        "host_id": "z8dfkgABBBBBBBfp8uQ",
        "topic": "INC-2041 bridge",
        "type": 2,
        "start_time": "2024-05-01T14:00:30Z",
        "timezone": "Europe/Madrid",
        "duration": 18,
        "total_size": 8192,
        "recording_count": 3,
        "share_url": "https://acme.zoom.us/rec/share/INC2041",
        "recording_play_passcode": "never-store-this",
        "password": "never-store-this-either",
        "recording_files": [
            vtt_file("f-mp4-0001", MEETING_UUID, RECORDING_START, "MP4", base),
            vtt_file("f-vtt-0001", MEETING_UUID, RECORDING_START, "TRANSCRIPT", base),
            vtt_file("f-cc-00001", MEETING_UUID, RECORDING_START, "CC", base),
        ],
    }
    video_only = {
        **bridge,
        "uuid": "Qx3pq0TBR1+oJ8rk0LQ6Lw==",
        "id": 85746352911,
        "topic": "INC-2041 follow-up",
        "start_time": "2024-05-01T16:00:00Z",
        "recording_files": [
            vtt_file("f-mp4-0002", "Qx3pq0TBR1+oJ8rk0LQ6Lw==", "2024-05-01T16:00:10Z", "MP4", base)
        ],
    }
    earlier = {
        **bridge,
        "uuid": "earlier0TBR1+oJ8rk0LQ6L==",
        "id": 85746352900,
        "topic": "Weekly sync",
        "start_time": "2024-04-30T09:00:00Z",
        "recording_files": [
            vtt_file(
                "f-vtt-0000",
                "earlier0TBR1+oJ8rk0LQ6L==",
                "2024-04-30T09:00:05Z",
                "TRANSCRIPT",
                base,
            )
        ],
    }
    return [bridge, video_only, earlier]


def _error(status: int, code: int, message: str) -> Response:
    return status, {"code": code, "message": message}, {}


class ZoomEmulator(Emulator):
    """Serves /oauth/token, /v2/… and the recording downloads of one account."""

    def __init__(self, *, scopes: tuple[str, ...] = SCOPES) -> None:
        super().__init__()
        self.scopes = list(scopes)
        self.meetings: list[dict[str, Any]] = []
        self.files: dict[str, str] = {
            "f-vtt-0001": BRIDGE_VTT,
            "f-cc-00001": BRIDGE_VTT,
            "f-vtt-0000": BRIDGE_VTT.replace("checkout", "weekly"),
        }
        self.page_plan: list[int] = []
        self.tokens: set[str] = {"zoom-static-token"}
        self.download_auth: list[str] = []  # the Authorization each storage request carried
        self.route("POST", "/oauth/token", self.token)
        self.route("GET", r"/v2/meetings/(?P<meeting>[^/]+)/recordings", self.meeting_recordings)
        self.route("GET", r"/v2/users/(?P<user>[^/]+)/recordings", self.user_recordings)
        self.route("GET", r"/rec/download/(?P<file>[^/]+)", self.download)
        self.route("GET", r"/storage/(?P<file>[^/]+)", self.storage)

    def start(self) -> ZoomEmulator:
        super().start()
        self.meetings = sample_meetings(self.url)
        return self

    @property
    def api_url(self) -> str:
        return self.url + "/v2"

    def fault_spec(self, name: str) -> dict[str, Any]:
        """Zoom's 429 carries its error body and, for the daily limit, Retry-After."""
        spec = super().fault_spec(name)
        if spec.get("status") == 429:
            spec["body"] = {
                "code": 429,
                "message": "You have reached the maximum per-second rate limit for this API. Try again later.",
            }
        return spec

    # -- auth ------------------------------------------------------------------------------------
    def token(self, req: Request) -> Response:
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if req.headers.get("authorization") != f"Basic {basic}":
            return (
                400,
                {"reason": "Invalid client_id or client_secret", "error": "invalid_client"},
                {},
            )
        if req.q("grant_type") != "account_credentials" or req.q("account_id") != ACCOUNT_ID:
            return (
                400,
                {"reason": "Invalid request : Bad account_id", "error": "invalid_request"},
                {},
            )
        token = f"zoom-token-{len(self.tokens)}"
        self.tokens.add(token)
        return (
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": 3599,
                "scope": " ".join(self.scopes),
                "api_url": self.url,
            },
            {},
        )

    def _denied(self, req: Request, scope: str) -> Response | None:
        token = req.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return _error(401, 124, "Invalid access token.")
        classic = {"recording:read:admin", "recording:read"}
        if (
            token != "zoom-static-token"
            and scope not in self.scopes
            and not classic & set(self.scopes)
        ):
            return _error(400, 4711, f"Invalid access token, does not contain scopes:[{scope}].")
        return None

    # -- recordings ------------------------------------------------------------------------------
    def meeting_recordings(self, req: Request) -> Response:
        denied = self._denied(req, SCOPES[0])
        if denied:
            return denied
        assert req.match is not None
        raw = req.match["meeting"]
        once, twice = unquote(raw), unquote(unquote(raw))
        for meeting in self.meetings:
            uuid = str(meeting["uuid"])
            if once == str(meeting["id"]):
                return 200, meeting, {}
            if uuid.startswith("/") or "//" in uuid:
                # Zoom reads such a UUID only double-encoded; encoded once, its "/" splits the path.
                if twice == uuid and once != uuid:
                    return 200, meeting, {}
            elif once == uuid:
                return 200, meeting, {}
        return _error(404, 3301, "This recording does not exist.")

    def user_recordings(self, req: Request) -> Response:
        denied = self._denied(req, SCOPES[1])
        if denied:
            return denied
        assert req.match is not None
        if unquote(req.match["user"]) not in (HOST, "me"):
            return _error(404, 1001, "User does not exist.")
        lo, hi = req.q("from") or "", req.q("to") or ""
        if not lo or not hi:
            return _error(400, 300, "The from and to parameters are required.")
        if (datetime.fromisoformat(hi) - datetime.fromisoformat(lo)).days > 30:
            return _error(400, 300, "The maximum range can be one month.")
        found = [m for m in self.meetings if lo <= m["start_time"][:10] <= hi]
        found.sort(key=lambda m: m["start_time"], reverse=True)
        size = int(req.q("page_size") or 30)
        offset, n = 0, 0
        if req.q("next_page_token"):
            offset, n = json.loads(base64.b64decode(str(req.q("next_page_token"))))
        if self.page_plan:
            size = min(size, self.page_plan[n % len(self.page_plan)])
        page = found[offset : offset + size]
        more = offset + len(page) < len(found)
        token = (
            base64.b64encode(json.dumps([offset + len(page), n + 1]).encode()).decode()
            if more
            else ""
        )
        return (
            200,
            {
                "from": lo,
                "to": hi,
                "page_count": 1,
                "page_size": size,
                "total_records": len(found),
                "next_page_token": token,
                "meetings": page,
            },
            {},
        )

    def download(self, req: Request) -> Response:
        token = req.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return _error(401, 124, "Invalid access token.")
        assert req.match is not None
        if req.match["file"] not in self.files:
            return _error(404, 3301, "This recording does not exist.")
        return 302, b"", {"Location": f"{self.url}/storage/{req.match['file']}?sig=abc"}

    def storage(self, req: Request) -> Response:
        self.download_auth.append(req.headers.get("authorization", ""))
        assert req.match is not None
        text = self.files.get(req.match["file"])
        if text is None:
            return 404, "not found", {}
        return 200, text.encode("utf-8"), {"Content-Type": "text/vtt"}
