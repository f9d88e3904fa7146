"""Meeting transcripts, live mode: the Zoom recordings API and the Teams online meeting
transcripts API, against local emulators."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.transcripts import TranscriptsConnector
from connectors.transcripts.live import TranscriptsConfig
from connectors.transcripts.zoom import meeting_path
from retro import registry
from retro.connector import IncidentRef
from retro.errors import ConfigError, ConnectorError, MissingCredential
from retro.models import SourceReport, TimelineEvent
from retro.timeline.bundle import load as load_bundle
from tests.emulators import teams_tenant as graph
from tests.emulators import teams_transcripts as tt
from tests.emulators import zoom as z

CONNECTOR = TranscriptsConnector()
SINCE = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
UNTIL = datetime(2024, 5, 1, 18, 0, tzinfo=UTC)


@pytest.fixture
def zoom_emu() -> Iterator[z.ZoomEmulator]:
    with z.ZoomEmulator() as emulator:
        yield emulator  # type: ignore[misc]


@pytest.fixture
def teams_emu() -> Iterator[tt.TeamsTranscriptsEmulator]:
    with tt.TeamsTranscriptsEmulator() as emulator:
        yield emulator  # type: ignore[misc]


def zoom_config(emu: z.ZoomEmulator, **overrides: Any) -> TranscriptsConfig:
    values: dict[str, Any] = {
        "zoom_account_id": z.ACCOUNT_ID,
        "zoom_client_id": z.CLIENT_ID,
        "zoom_client_secret": SecretStr(z.CLIENT_SECRET),
        "zoom_api_url": emu.api_url,
        "zoom_oauth_url": emu.url,
        "backoff": 0.01,
        "max_retries": 3,
    }
    return TranscriptsConfig(**{**values, **overrides})


def teams_config(emu: tt.TeamsTranscriptsEmulator, **overrides: Any) -> TranscriptsConfig:
    values: dict[str, Any] = {
        "tenant_id": graph.TENANT,
        "client_id": graph.CLIENT_ID,
        "client_secret": SecretStr(graph.CLIENT_SECRET),
        "base_url": emu.graph_url,
        "login_url": emu.url,
        "backoff": 0.01,
        "max_retries": 3,
    }
    return TranscriptsConfig(**{**values, **overrides})


def ref(*targets: str, window: bool = True) -> IncidentRef:
    extra = {"since": SINCE, "until": UNTIL} if window else {}
    return IncidentRef(incident_id="INC-2041", targets={"transcripts": list(targets)}, **extra)


def read_back(out: Path) -> tuple[list[TimelineEvent], SourceReport]:
    (out / "incident.yaml").write_text("id: INC-2041\n")
    raw = load_bundle(out, connectors=registry.connectors())
    (report,) = raw.reports
    assert not raw.bundle_report.skipped
    return sorted(raw.events, key=lambda e: (e.at, e.key)), report


# --- Zoom -----------------------------------------------------------------------------------------


def test_zoom_meeting_by_uuid_round_trips_dated(zoom_emu: z.ZoomEmulator, tmp_path: Path) -> None:
    report = CONNECTOR.harvest(ref(f"zoom:{z.MEETING_UUID}"), tmp_path, zoom_config(zoom_emu))
    assert report.status == "ok" and report.records == 8
    stem = f"transcripts/zoom-{z.MEETING_ID}-f-vtt-0001"
    assert report.files == [f"{stem}.vtt", f"{stem}.meta.json"]
    # The UUID starts with "/": Zoom needs it double-encoded.
    assert any(
        r.path == "/v2/meetings/%252FajXp112QmuoKj4854875%253D%253D/recordings"
        for r in zoom_emu.log
    )
    meta = json.loads((tmp_path / f"{stem}.meta.json").read_text())
    assert meta["recording_start"] == z.RECORDING_START and meta["title"] == "INC-2041 bridge"
    assert "never-store-this" not in json.dumps(meta) and "download_url" not in json.dumps(meta)
    assert (tmp_path / f"{stem}.vtt").read_text() == z.BRIDGE_VTT
    events, read_report = read_back(tmp_path)
    assert [e.at.strftime("%H:%M:%S") for e in events] == [
        "14:01:02",
        "14:01:10",
        "14:01:15",
        "14:02:30",
        "14:10:58",
        "14:18:40",
    ]
    assert (
        events[3].text
        == "The pool config change from this morning is the trigger. I'm rolling it back now."
    )
    assert all(e.attrs["low_trust"] and e.attrs["start_from"] == "sidecar" for e in events)
    assert events[0].url == "https://acme.zoom.us/rec/share/INC2041"
    assert read_report.records == len(events) + sum(read_report.skipped.values())


def test_meeting_path_encoding() -> None:
    assert meeting_path("85746352910") == "/meetings/85746352910/recordings"
    assert (
        meeting_path("Qx3pq0TBR1+oJ8rk0LQ6Lw==")
        == "/meetings/Qx3pq0TBR1%2BoJ8rk0LQ6Lw%3D%3D/recordings"
    )
    assert meeting_path("/ajXp==") == "/meetings/%252FajXp%253D%253D/recordings"
    assert meeting_path("ab//cd") == "/meetings/ab%252F%252Fcd/recordings"


@pytest.mark.parametrize("plan", [[], [1], [1, 0], [0, 2]])
def test_zoom_user_recordings_page_without_loss(
    zoom_emu: z.ZoomEmulator, tmp_path: Path, plan: list[int]
) -> None:
    zoom_emu.page_plan = plan
    zoom_emu.files["f-vtt-0002"] = z.BRIDGE_VTT
    zoom_emu.meetings[1]["recording_files"].append(
        z.vtt_file(
            "f-vtt-0002",
            "Qx3pq0TBR1+oJ8rk0LQ6Lw==",
            "2024-05-01T16:00:10Z",
            "TRANSCRIPT",
            zoom_emu.url,
        )
    )
    report = CONNECTOR.harvest(
        ref(f"zoom:user:{z.HOST}"), tmp_path, zoom_config(zoom_emu, zoom_page_size=30)
    )
    written = sorted(p.name for p in (tmp_path / "transcripts").glob("*.vtt"))
    assert written == [f"zoom-{z.MEETING_ID}-f-vtt-0001.vtt", "zoom-85746352911-f-vtt-0002.vtt"]
    assert report.records == 16 and report.skipped == {}
    calls = [r for r in zoom_emu.log if r.path.endswith(f"/users/{z.HOST}/recordings")]
    assert all(r.q("from") == "2024-05-01" and r.q("to") == "2024-05-01" for r in calls)
    events, _ = read_back(tmp_path)
    assert len(events) == 12 and len({e.key for e in events}) == 12


def test_a_meeting_named_twice_is_fetched_once(zoom_emu: z.ZoomEmulator, tmp_path: Path) -> None:
    targets = (f"zoom:{z.MEETING_ID}", f"zoom:user:{z.HOST}")
    report = CONNECTOR.harvest(ref(*targets), tmp_path, zoom_config(zoom_emu))
    assert report.records == 8 and len(report.files) == 2
    assert len([r for r in zoom_emu.log if r.path.startswith("/rec/download/")]) == 1
    assert report.skipped == {
        "Zoom meeting without a transcript (turn on audio transcript in cloud recording)": 1
    }


def test_zoom_user_targets_need_a_window(zoom_emu: z.ZoomEmulator, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a window"):
        CONNECTOR.harvest(ref(f"zoom:user:{z.HOST}", window=False), tmp_path, zoom_config(zoom_emu))


def test_zoom_429_and_faults_are_retried(
    zoom_emu: z.ZoomEmulator, tmp_path: Path, waits: list[float]
) -> None:
    zoom_emu.inject_fault("429 with Retry-After", r"/recordings$")
    zoom_emu.inject_fault("dropped connection", r"^/rec/download/")
    zoom_emu.inject_fault("503", r"^/storage/")
    report = CONNECTOR.harvest(ref(f"zoom:{z.MEETING_ID}"), tmp_path, zoom_config(zoom_emu))
    assert report.records == 8 and waits[0] == 7.0 and len(waits) == 3
    assert (
        tmp_path / f"transcripts/zoom-{z.MEETING_ID}-f-vtt-0001.vtt"
    ).read_text() == z.BRIDGE_VTT


def test_zoom_errors_are_one_line_each(zoom_emu: z.ZoomEmulator, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="has no recording") as info:
        CONNECTOR.harvest(ref("zoom:123"), tmp_path, zoom_config(zoom_emu))
    assert "3301" in str(info.value) and "audio transcript" in str(info.value)
    with pytest.raises(ConnectorError, match="Zoom refused a token") as info:
        CONNECTOR.harvest(
            ref("zoom:123"), tmp_path, zoom_config(zoom_emu, zoom_client_secret=SecretStr("no"))
        )
    assert "ZOOM_CLIENT_SECRET" in str(info.value)
    with pytest.raises(ConnectorError, match="rejected the token"):
        CONNECTOR.harvest(
            ref("zoom:123"),
            tmp_path,
            zoom_config(zoom_emu, zoom_account_id=None, zoom_token=SecretStr("stale")),
        )
    zoom_emu.inject(r"/recordings$", status=502, times=10)
    with pytest.raises(ConnectorError, match="HTTP 502"):
        CONNECTOR.harvest(
            ref(f"zoom:{z.MEETING_ID}"), tmp_path, zoom_config(zoom_emu, max_retries=1)
        )


def test_a_zoom_app_without_the_scope(tmp_path: Path) -> None:
    with z.ZoomEmulator(scopes=("meeting:read:admin",)) as emu:
        assert isinstance(emu, z.ZoomEmulator)
        with pytest.raises(ConnectorError, match="Zoom refused") as info:
            CONNECTOR.harvest(ref(f"zoom:{z.MEETING_ID}"), tmp_path, zoom_config(emu))
        assert "cloud_recording:read:list_recording_files:admin" in str(info.value)
        with pytest.raises(ConnectorError, match="lacks cloud_recording"):
            CONNECTOR.check(zoom_config(emu))


def test_a_download_off_zoom_is_not_sent_the_token(
    zoom_emu: z.ZoomEmulator, tmp_path: Path
) -> None:
    zoom_emu.meetings[0]["recording_files"][1]["download_url"] = "https://files.example.com/x.vtt"
    with pytest.raises(ConnectorError, match="unexpected download host files.example.com"):
        CONNECTOR.harvest(ref(f"zoom:{z.MEETING_ID}"), tmp_path, zoom_config(zoom_emu))


# --- Teams ----------------------------------------------------------------------------------------


def test_teams_meeting_by_join_url_round_trips(
    teams_emu: tt.TeamsTranscriptsEmulator, tmp_path: Path
) -> None:
    teams_emu.page_plan = [1, 0]  # one transcript per page, and an empty page between
    report = CONNECTOR.harvest(
        ref(f"teams:{tt.ORGANIZER}/{tt.JOIN_URL}"), tmp_path, teams_config(teams_emu)
    )
    assert report.records == 4
    assert report.skipped == {"Teams transcript outside the harvest window": 1}
    lists = [r for r in teams_emu.log if r.path.endswith("/transcripts")]
    assert len(lists) == 3  # 1 item, 0 items (with a next link), 1 item
    meta = json.loads((tmp_path / f"transcripts/teams-{tt.TRANSCRIPT}.meta.json").read_text())
    assert meta["recording_start"] == "2024-05-01T14:01:05.1234567Z" and meta["platform"] == "teams"
    events, _ = read_back(tmp_path)
    assert [(e.at.strftime("%H:%M:%S"), e.actor.name if e.actor else None) for e in events] == [
        ("14:01:06", "Ana Ruiz"),
        ("14:01:13", "Bo Chen"),
        ("14:12:07", "Cy Park"),
    ]
    assert (
        events[0].text
        == "Thanks for joining, checkout is throwing errors. I'm the incident commander for this one."
    )
    content = next(r for r in teams_emu.log if r.path.endswith("/content"))
    assert content.q("$format") == "text/vtt"


def test_teams_without_a_window_takes_every_transcript(
    teams_emu: tt.TeamsTranscriptsEmulator, tmp_path: Path
) -> None:
    report = CONNECTOR.harvest(
        ref(f"teams:{tt.ORGANIZER}/{tt.MEETING}", window=False), tmp_path, teams_config(teams_emu)
    )
    assert report.records == 8 and len(report.files) == 4


def test_teams_faults_and_refusals(
    teams_emu: tt.TeamsTranscriptsEmulator, tmp_path: Path, waits: list[float]
) -> None:
    target = f"teams:{tt.ORGANIZER}/{tt.MEETING}"
    teams_emu.inject_fault("429 with Retry-After", r"/transcripts$")
    teams_emu.inject_fault("connection cut mid-body", r"/content$")
    assert CONNECTOR.harvest(ref(target), tmp_path, teams_config(teams_emu)).records == 4
    assert waits[0] == 7.0
    with pytest.raises(ConnectorError, match="application access policy") as info:
        CONNECTOR.harvest(
            ref(f"teams:{graph.USERS['bo'][0]}/{tt.MEETING}"), tmp_path, teams_config(teams_emu)
        )
    assert "Grant-CsApplicationAccessPolicy" in str(info.value)
    teams_emu.evaluation_exhausted = True
    with pytest.raises(ConnectorError, match="payment required") as info:
        CONNECTOR.harvest(ref(target), tmp_path, teams_config(teams_emu))
    assert "metered-api-setup" in str(info.value)
    teams_emu.roles = ["Chat.Read.All"]
    with pytest.raises(ConnectorError, match="OnlineMeetingTranscript.Read.All"):
        CONNECTOR.harvest(ref(target), tmp_path, teams_config(teams_emu))
    with pytest.raises(ConnectorError, match="may not read meeting transcripts"):
        CONNECTOR.check(teams_config(teams_emu))


def test_an_unknown_join_url(teams_emu: tt.TeamsTranscriptsEmulator, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="no online meeting with that join URL"):
        CONNECTOR.harvest(
            ref(f"teams:{tt.ORGANIZER}/https://teams.microsoft.com/l/meetup-join/nope"),
            tmp_path,
            teams_config(teams_emu),
        )


# --- both -----------------------------------------------------------------------------------------


def test_targets_credentials_and_check(
    zoom_emu: z.ZoomEmulator, teams_emu: tt.TeamsTranscriptsEmulator, tmp_path: Path
) -> None:
    for bad in ("meet:abc", "zoom:", "teams:user-without-meeting", "zoom:user:"):
        with pytest.raises(ConfigError):
            CONNECTOR.harvest(ref(bad), tmp_path, TranscriptsConfig())
    with pytest.raises(MissingCredential, match="ZOOM_CLIENT_SECRET"):
        CONNECTOR.harvest(ref("zoom:1"), tmp_path, TranscriptsConfig())
    with pytest.raises(MissingCredential, match="TEAMS_CLIENT_SECRET"):
        CONNECTOR.harvest(ref(f"teams:{tt.ORGANIZER}/{tt.MEETING}"), tmp_path, TranscriptsConfig())
    with pytest.raises(MissingCredential):
        CONNECTOR.check(TranscriptsConfig())
    both = zoom_config(zoom_emu).model_copy(
        update=teams_config(teams_emu).model_dump(
            include={"tenant_id", "client_id", "client_secret", "base_url", "login_url"}
        )
    )
    lines = CONNECTOR.check(both)
    assert lines == [
        "zoom: token ok, may read recording files",
        "teams: token ok, OnlineMeetingTranscript.Read.All granted (the access policy is checked per meeting)",
    ]
    assert CONNECTOR.harvest(IncidentRef(incident_id="x"), tmp_path, both).status == "empty"


def test_a_stopped_harvest_resumes_at_the_target_it_stopped_at(
    zoom_emu: z.ZoomEmulator, teams_emu: tt.TeamsTranscriptsEmulator, tmp_path: Path
) -> None:
    cfg = zoom_config(zoom_emu).model_copy(
        update=teams_config(teams_emu).model_dump(
            include={"tenant_id", "client_id", "client_secret", "base_url", "login_url"}
        )
    )
    targets = (f"zoom:{z.MEETING_ID}", f"teams:{tt.ORGANIZER}/{tt.MEETING}")
    teams_emu.inject(r"/transcripts$", status=503, times=10)
    with pytest.raises(ConnectorError, match="HTTP 503"):
        CONNECTOR.harvest(ref(*targets), tmp_path, cfg.model_copy(update={"max_retries": 1}))
    assert (tmp_path / "transcripts/.harvest-state.json").exists()
    teams_emu.faults.clear()
    zoom_emu.log.clear()
    report = CONNECTOR.harvest(ref(*targets), tmp_path, cfg)
    assert zoom_emu.log == []  # the Zoom transcript was done: no token, no download again
    assert report.records == 12 and len(report.files) == 4
    assert not (tmp_path / "transcripts/.harvest-state.json").exists()
    events, _ = read_back(tmp_path)
    assert len(events) == 9


def test_retro_harvest_from_zoom_then_timeline(
    zoom_emu: z.ZoomEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from retro.cli.main import cli

    env = {
        "ZOOM_ACCOUNT_ID": z.ACCOUNT_ID,
        "ZOOM_CLIENT_ID": z.CLIENT_ID,
        "ZOOM_CLIENT_SECRET": z.CLIENT_SECRET,
        "ZOOM_API_URL": zoom_emu.api_url,
        "ZOOM_OAUTH_URL": zoom_emu.url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "bundle"
    args = ["harvest", "--incident", "INC-2041", "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--from", f"transcripts=zoom:{z.MEETING_UUID}"])
    assert result.exit_code == 0, result.output
    timeline = CliRunner().invoke(cli, ["timeline", "--bundle", str(out), "--format", "json"])
    assert timeline.exit_code == 0, timeline.output
    events = json.loads(timeline.stdout)
    assert [e["source"] for e in events] == ["transcripts"] * len(events) and len(events) == 6
