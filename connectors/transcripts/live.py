"""Transcripts live mode: fetch meeting transcripts from Zoom and Microsoft Teams into the
bundle, each as `transcripts/<platform>-<id>.vtt` with a `.meta.json` sidecar that dates it.

Targets (`retro harvest --from transcripts=…`):
- `zoom:<meeting id or UUID>`: that meeting's cloud-recording transcript;
- `zoom:user:<user id or email>`: every recorded meeting of that user within --since/--until;
- `teams:<organizer user id>/<online meeting id or join URL>`: that meeting's transcripts.
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from connectors._support import Checkpoint, ref_key, save_json
from connectors.teams.graph import (
    GraphClient,
    GraphConfig,
    acquire_token,
    as_config,
    token_roles,
    uses_client_credentials,
)
from connectors.transcripts import msteams, zoom
from retro.connector import IncidentRef, parse_time
from retro.errors import BundleError, ConfigError, ConnectorError, MissingCredential
from retro.models import Progress, SourceReport, no_progress

SOURCE = "transcripts"
_FORM = (
    "use --from transcripts=zoom:<meeting-id>, zoom:user:<user>, "
    "or teams:<organizer-user-id>/<meeting-id>"
)
_UNSAFE = re.compile(r"[^\w.-]+")


class TranscriptsConfig(GraphConfig):
    """Settings for the Zoom API and, for Teams meetings, Microsoft Graph (the TEAMS_* ones)."""

    zoom_account_id: str | None = Field(
        default=None,
        description="Account id of a Zoom Server-to-Server OAuth app",
        json_schema_extra={"env": "ZOOM_ACCOUNT_ID"},
    )
    zoom_client_id: str | None = Field(
        default=None,
        description="Client id of the Zoom Server-to-Server OAuth app",
        json_schema_extra={"env": "ZOOM_CLIENT_ID"},
    )
    zoom_client_secret: SecretStr | None = Field(
        default=None,
        description="Client secret of the Zoom Server-to-Server OAuth app",
        json_schema_extra={"env": "ZOOM_CLIENT_SECRET"},
    )
    zoom_token: SecretStr | None = Field(
        default=None,
        description="A Zoom access token to use as is, instead of the app's credentials",
        json_schema_extra={"env": "ZOOM_TOKEN"},
    )
    zoom_api_url: str = Field(
        default="https://api.zoom.us/v2",
        description="Zoom REST API base URL (tests point it at an emulator)",
        json_schema_extra={"env": "ZOOM_API_URL"},
    )
    zoom_oauth_url: str = Field(
        default="https://zoom.us",
        description="Zoom OAuth host that issues tokens",
        json_schema_extra={"env": "ZOOM_OAUTH_URL"},
    )
    zoom_page_size: int = Field(
        default=300, ge=1, le=300, description="page_size of a user's recordings list (max 300)"
    )


def as_transcripts_config(config: BaseModel) -> TranscriptsConfig:
    if isinstance(config, TranscriptsConfig):
        return config
    return TranscriptsConfig.model_validate(config.model_dump())


def parse_target(target: str) -> tuple[str, str]:
    """("zoom", meeting), ("zoom-user", user) or ("teams", "user/meeting")."""
    platform, sep, rest = target.strip().partition(":")
    rest = rest.strip()
    if sep and platform == "zoom" and rest.startswith("user:"):
        if rest[5:].strip():
            return "zoom-user", rest[5:].strip()
    elif sep and platform in ("zoom", "teams") and rest:
        return platform, rest
    raise ConfigError(f"transcripts: {target!r} names no meeting", hint=_FORM)


def _name(value: str) -> str:
    return _UNSAFE.sub("_", value).strip("_.")[:120] or "transcript"


def _write(out: Path, stem: str, vtt: str, meta: dict[str, Any], report: SourceReport) -> None:
    folder = out / SOURCE
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{stem}.vtt.tmp"
    tmp.write_text(vtt, encoding="utf-8")
    tmp.replace(folder / f"{stem}.vtt")
    save_json(folder / f"{stem}.meta.json", meta)
    report.files += [f"{SOURCE}/{stem}.vtt", f"{SOURCE}/{stem}.meta.json"]


def _cues(vtt: str) -> int:
    return vtt.count("-->")


# --- Zoom -----------------------------------------------------------------------------------------


def _zoom_meeting(
    api: zoom.ZoomClient,
    meeting: dict[str, Any],
    out: Path,
    report: SourceReport,
    done: set[str],
) -> None:
    files = zoom.transcript_files(meeting)
    if not files:
        report.skip(
            "Zoom meeting without a transcript (turn on audio transcript in cloud recording)"
        )
        return
    for rec in files:
        if str(rec.get("id")) in done:
            continue  # named twice (by id and in a user's list): fetched and written once
        done.add(str(rec.get("id")))
        url = rec.get("download_url")
        if not isinstance(url, str) or not url:
            report.skip("Zoom transcript file without a download_url")
            continue
        vtt = api.download(url)
        stem = _name(f"zoom-{meeting.get('id')}-{rec.get('id')}")
        _write(out, stem, vtt, zoom.sidecar(meeting, rec), report)
        report.records += _cues(vtt)


def _in_window(meeting: dict[str, Any], ref: IncidentRef) -> bool:
    try:
        start = parse_time(meeting.get("start_time"), field_name="start_time")
    except BundleError:
        return True  # keep what cannot be placed; the timeline's window decides later
    return (ref.until is None or start <= ref.until) and (ref.since is None or start >= ref.since)


def zoom_target(
    api: zoom.ZoomClient,
    kind: str,
    ident: str,
    ref: IncidentRef,
    out: Path,
    report: SourceReport,
    done: set[str],
) -> None:
    """One `zoom:` target: a meeting, or every recorded meeting of a user in the window."""
    if kind == "zoom":
        _zoom_meeting(api, api.recordings(ident), out, report, done)
        return
    assert ref.since is not None and ref.until is not None  # checked before anything is fetched
    seen: set[str] = set()
    for meeting in api.user_recordings(ident, ref.since, ref.until):
        uuid = str(meeting.get("uuid") or meeting.get("id"))
        if uuid in seen:
            continue  # a meeting repeated on a later page is fetched once
        seen.add(uuid)
        if not _in_window(meeting, ref):
            report.skip("Zoom meeting outside the harvest window")
            continue
        _zoom_meeting(api, meeting, out, report, done)


# --- Teams ----------------------------------------------------------------------------------------


def _overlaps(item: dict[str, Any], ref: IncidentRef) -> bool:
    try:
        start = parse_time(item.get("createdDateTime"), field_name="createdDateTime")
        end_value = item.get("endDateTime")
        end = parse_time(end_value, field_name="endDateTime") if end_value else start
    except BundleError:
        return True
    return (ref.until is None or start <= ref.until) and (ref.since is None or end >= ref.since)


def teams_target(
    api: GraphClient, target: str, ref: IncidentRef, out: Path, report: SourceReport
) -> None:
    """One `teams:` target: every transcript of the meeting that overlaps the window."""
    user, meeting = msteams.parse_target(target)
    meeting = msteams.meeting_id(api, user, meeting)
    items = msteams.transcripts(api, user, meeting)
    if not items:
        report.skip("Teams meeting without a transcript (was transcription on?)")
    for item in items:
        if not _overlaps(item, ref):
            report.skip("Teams transcript outside the harvest window")
            continue
        vtt = msteams.content(api, user, meeting, str(item["id"]))
        stem = _name(f"teams-{item['id']}")
        _write(out, stem, vtt, msteams.sidecar(user, meeting, item), report)
        report.records += _cues(vtt)


# --- harvest and check ----------------------------------------------------------------------------


def _validate(targets: list[tuple[str, str, str]], ref: IncidentRef) -> None:
    """Every target is checked before anything is fetched."""
    for _, kind, value in targets:
        if kind == "teams":
            msteams.parse_target(value)
        if kind == "zoom-user" and (ref.since is None or ref.until is None):
            raise ConfigError(
                "transcripts: zoom:user: needs a window", hint="pass --since and --until"
            )


def _merge(report: SourceReport, part: dict[str, Any]) -> None:
    """Add one finished target's summary (fetched now, or by an earlier run) to the report."""
    report.records += int(part.get("records", 0))
    report.files += [str(f) for f in part.get("files", [])]
    for reason, n in dict(part.get("skipped", {})).items():
        report.skip(str(reason), int(n))


class _Clients:
    """The Zoom and Graph clients, each made (and its token fetched) when first needed."""

    def __init__(self, cfg: TranscriptsConfig, stack: ExitStack) -> None:
        self.cfg, self.stack = cfg, stack
        self._zoom: zoom.ZoomClient | None = None
        self._graph: GraphClient | None = None

    def zoom(self) -> zoom.ZoomClient:
        if self._zoom is None:
            self._zoom = self.stack.enter_context(zoom.ZoomClient(self.cfg))
        return self._zoom

    def graph(self) -> GraphClient:
        if self._graph is None:
            client = GraphClient(as_config(self.cfg), source=SOURCE, key_name=SOURCE)
            self._graph = self.stack.enter_context(client)
        return self._graph


def harvest(
    ref: IncidentRef, out: Path, config: BaseModel, progress: Progress = no_progress
) -> SourceReport:
    """Fetch every transcript the harvest names and write it, dated, under out/transcripts/.

    A run that stops keeps which targets are done in a checkpoint, so the next run with the
    same targets and window fetches only the rest.
    """
    cfg = as_transcripts_config(config)
    report = SourceReport(name=SOURCE)
    targets = [(t, *parse_target(t)) for t in ref.of(SOURCE)]
    if not targets:
        report.status = "empty"
        report.skip("no meeting transcript for this incident")
        return report
    _validate(targets, ref)
    checkpoint = Checkpoint(out / SOURCE, ref_key(SOURCE, ref))
    fetched: set[str] = set()  # Zoom recording files written, so none is written twice
    try:
        with ExitStack() as stack:
            clients = _Clients(cfg, stack)
            for n, (target, kind, value) in enumerate(targets):
                progress(f"transcripts: {target}", n, len(targets))
                if not checkpoint.done(target):
                    part = SourceReport(name=SOURCE)
                    before = set(fetched)
                    if kind == "teams":
                        teams_target(clients.graph(), value, ref, out, part)
                    else:
                        zoom_target(clients.zoom(), kind, value, ref, out, part, fetched)
                    checkpoint.finish(
                        target,
                        records=part.records,
                        files=part.files,
                        skipped=part.skipped,
                        zoom_files=sorted(fetched - before),
                    )
                done = checkpoint.unit(target)
                fetched.update(str(f) for f in done.get("zoom_files", []))
                _merge(report, done)
    except BaseException:
        checkpoint.save()
        raise
    checkpoint.clear()
    progress("transcripts", len(targets), len(targets))
    report.status = "ok" if report.files else "empty"
    return report


def check(config: BaseModel) -> list[str]:
    """Get a token for each configured platform and say what it may read."""
    cfg = as_transcripts_config(config)
    lines: list[str] = []
    if zoom.configured(cfg):
        lines += _check_zoom(cfg)
    if uses_client_credentials(cfg) or (cfg.token and cfg.token.get_secret_value().strip()):
        lines += _check_teams(cfg)
    if not lines:
        missing = MissingCredential("Zoom or Teams", "ZOOM_CLIENT_SECRET or TEAMS_CLIENT_SECRET")
        missing.hint = "set the ZOOM_* or TEAMS_* settings (docs/connectors/transcripts.md)"
        raise missing
    return lines


def _check_zoom(cfg: TranscriptsConfig) -> list[str]:
    _, scopes = zoom.acquire_token(cfg)
    if scopes is None:
        return ["zoom: token given as is; its scopes are unknown"]
    granted = set(scopes)
    if granted & set(zoom.CLASSIC_SCOPES):
        return [f"zoom: token ok, scopes include {sorted(granted & set(zoom.CLASSIC_SCOPES))[0]}"]
    missing = [s for s in zoom.NEEDED_SCOPES if s not in granted]
    if zoom.NEEDED_SCOPES[0] in missing:
        hint = "add it to the Server-to-Server OAuth app's scopes and activate the app again"
        raise ConnectorError(SOURCE, f"the Zoom app lacks {zoom.NEEDED_SCOPES[0]}", hint=hint)
    line = "zoom: token ok, may read recording files"
    return [
        line + (f" (not granted: {', '.join(missing)}: zoom:user: targets fail)" if missing else "")
    ]


def _check_teams(cfg: TranscriptsConfig) -> list[str]:
    token = acquire_token(as_config(cfg), SOURCE, SOURCE)
    roles, _ = token_roles(token)
    if roles is None:
        return ["teams: token ok; its application permissions are unknown (delegated?)"]
    if not set(roles) & set(msteams.NEEDED_ROLES):
        hint = "grant OnlineMeetingTranscript.Read.All (application) with admin consent, and an application access policy"
        raise ConnectorError(SOURCE, "the Teams token may not read meeting transcripts", hint=hint)
    return [
        "teams: token ok, OnlineMeetingTranscript.Read.All granted (the access policy is checked per meeting)"
    ]
