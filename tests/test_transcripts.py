"""Meeting transcripts connector, file mode: WebVTT, SubRip, text and Meet API bodies, dated
and merged into low-trust speaker turns."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.transcripts import TranscriptsConnector
from connectors.transcripts.parse import clock, parse_cues, parse_text
from connectors.transcripts.read import MERGE_GAP, MERGE_SPAN, doc_shape
from retro import registry
from retro.connector import Doc, ReadContext
from retro.errors import BundleError
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from retro.timeline.bundle import load as load_bundle
from tests.emulators.teams_transcripts import BRIDGE_VTT as TEAMS_VTT
from tests.emulators.zoom import BRIDGE_VTT as ZOOM_VTT

CONNECTOR = TranscriptsConnector()
START = "2024-05-01T14:01:00Z"
T0 = datetime(2024, 5, 1, 14, 1, tzinfo=UTC)


def text(rel: str, body: str) -> Doc:
    return Doc(rel=rel, data=body, fmt="text")


def sidecar(rel: str, **meta: Any) -> Doc:
    return Doc(rel=rel, data={"recording_start": START, **meta})


def read(
    docs: list[Doc], *, lenient: bool = False, tz: str | None = None, **meta: Any
) -> tuple[list[TimelineEvent], SourceReport]:
    report = SourceReport(name="transcripts")
    ctx = ReadContext(
        bundle=Path("."),
        incident=IncidentMeta(id="INC-2041", **meta),
        report=report,
        lenient=lenient,
        tz=ZoneInfo(tz) if tz else None,
    )
    assert all(CONNECTOR.claims(d) for d in docs), [d.rel for d in docs if not CONNECTOR.claims(d)]
    return list(CONNECTOR.read_bundle(docs, ctx)), report


def lines(events: list[TimelineEvent]) -> list[tuple[str, str | None, str]]:
    return [
        (e.at.strftime("%H:%M:%S.%f")[:12], e.actor.name if e.actor else None, e.text)
        for e in events
    ]


# --- Zoom -----------------------------------------------------------------------------------------


def test_zoom_vtt_with_a_sidecar_gets_wall_clock_times_and_merged_speakers() -> None:
    events, report = read(
        [text("t/bridge.vtt", ZOOM_VTT), sidecar("t/bridge.meta.json", title="INC-2041 bridge")]
    )
    assert lines(events) == [
        (
            "14:01:02.100",
            "Ana Ruiz",
            "Okay, I'm opening the bridge for checkout errors. Bo, can you take the database side?",
        ),
        ("14:01:10.200", "Bo Chen", "Yes. Pool connections on payments-db are maxed out."),
        ("14:01:15.000", "Cy Park", "Error rate on checkout is at seven percent."),
        (
            "14:02:30.000",
            "Bo Chen",
            "The pool config change from this morning is the trigger. I'm rolling it back now.",
        ),
        ("14:10:58.000", "Cy Park", "Errors are dropping, under one percent now."),
        ("14:18:40.000", "Ana Ruiz", "We're resolved. Closing the bridge."),
    ]
    first = events[0]
    assert first.kind == "message" and first.source == "transcripts"
    assert first.attrs["low_trust"] is True
    assert (
        first.attrs.items()
        >= {
            "transcript": "INC-2041 bridge",
            "platform": "zoom",
            "speaker": "Ana Ruiz",
            "cues": 2,
            "start_from": "sidecar",
            "offset": "00:00:02.100",
            "end_offset": "00:00:09.400",
            "recording_start": "2024-05-01T14:01:00+00:00",
        }.items()
    )
    assert first.key == "transcripts:t/bridge:000002100"
    assert first.provenance.file == "t/bridge.vtt" and first.provenance.record == "cue 1"
    assert report.records == 8 and report.skipped == {
        "cue merged into the same speaker's line before it": 2
    }
    assert report.records == len(events) + sum(report.skipped.values())


def test_every_event_is_low_trust_and_the_connector_says_so() -> None:
    events, _ = read([text("b.vtt", ZOOM_VTT), sidecar("b.meta.json")])
    assert all(e.attrs["low_trust"] is True for e in events)
    info = registry.source_info()["transcripts"]
    assert (
        info.low_trust
        and info.roles == frozenset({"transcript"})
        and info.title == "Meeting transcript"
    )


def test_speakers_map_to_people_through_the_sidecar_and_incident_yaml() -> None:
    speakers = {
        "Ana Ruiz": "ana.ruiz@acme.io",
        "Bo Chen": {"email": "bo.chen@acme.io", "title": "DBA"},
    }
    docs = [text("b.vtt", ZOOM_VTT), sidecar("b.meta.json", speakers=speakers)]
    people = {"Cy Park": {"email": "cy.park@acme.io", "name": "Cyrus Park"}}
    events, _ = read(docs, people=people)
    actors = {(e.actor.name, e.actor.email, e.actor.title) for e in events if e.actor}
    assert actors == {
        ("Ana Ruiz", "ana.ruiz@acme.io", None),
        ("Bo Chen", "bo.chen@acme.io", "DBA"),
        ("Cyrus Park", "cy.park@acme.io", None),
    }
    by_name = {e.actor.name: e.actor for e in events if e.actor}
    assert sum(1 for e in events if e.actor is by_name["Ana Ruiz"]) == 2  # one shared Actor


# --- Teams ----------------------------------------------------------------------------------------


def test_teams_voice_tags_with_a_note_block_start() -> None:
    body = TEAMS_VTT.replace(
        "WEBVTT\n", f"WEBVTT\n\nNOTE\nrecording_start: {START}\ntitle: Bridge\n", 1
    )
    events, report = read([text("teams.vtt", body)])
    assert lines(events) == [
        (
            "14:01:01.500",
            "Ana Ruiz",
            "Thanks for joining, checkout is throwing errors. I'm the incident commander for this one.",
        ),
        ("14:01:08.100", "Bo Chen", "The pool config change is the trigger, I'm rolling it back."),
        ("14:12:02.000", "Cy Park", "Error rate is back to baseline."),
    ]
    assert (
        events[0].attrs["platform"] == "teams"
        and events[0].attrs["start_from"] == "transcript file"
    )
    assert events[0].attrs["transcript"] == "Bridge"
    assert events[0].provenance.record == "cue 3f8a9c21-1c2e-4a5b-9d3e-2b1c0a9f8e7d/12-0"
    assert report.skipped == {"cue merged into the same speaker's line before it": 1}


def test_teams_metadata_content_carries_absolute_times() -> None:
    body = (
        "WEBVTT\n\n00:00:16.246 --> 00:00:17.726\n"
        '{"startDateTime":"2024-05-01T14:03:00.0461639+00:00","endDateTime":"2024-05-01T14:03:01.5261639+00:00",'
        '"speakerName":"Bo Chen","spokenText":"Rolling back now.","spokenLanguage":"en-us"}\n'
    )
    (event,) = read([text("meta.vtt", body)])[0]
    assert event.at == datetime(2024, 5, 1, 14, 3, 0, 46163, tzinfo=UTC)
    assert event.actor is not None and event.actor.name == "Bo Chen"
    assert event.attrs["start_from"] == "cue times" and "recording_start" not in event.attrs


def test_short_teams_timestamps_and_srt() -> None:
    parsed = parse_cues(
        "WEBVTT\n\n0:0:0.0 --> 0:0:5.320\n<v User Name>This is a test.</v>\n", "vtt"
    )
    (cue,) = parsed.cues
    assert (cue.start, cue.end, cue.speaker, cue.text) == (
        0.0,
        5.32,
        "User Name",
        "This is a test.",
    )
    srt = "1\n00:00:01,000 --> 00:00:04,500\nAna Ruiz: rollback started\n\n2\n00:00:05,000 --> 00:00:06,000\nBo Chen: ok\n"
    assert doc_shape(text("call.srt", srt)) == "srt"
    events, _ = read([text("call.srt", srt), sidecar("call.meta.json")])
    assert lines(events) == [
        ("14:01:01.000", "Ana Ruiz", "rollback started"),
        ("14:01:05.000", "Bo Chen", "ok"),
    ]


def test_cue_markup_and_entities_are_stripped() -> None:
    parsed = parse_cues(
        "WEBVTT\n\nSTYLE\n::cue { color: red }\n\n00:01.000 --> 00:02.000 align:start\n"
        "<v.loud Ana Ruiz><i>roll</i> <b>back</b> &amp; <00:01.500>watch</v>\n",
        "vtt",
    )
    (cue,) = parsed.cues
    assert (cue.start, cue.speaker, cue.text) == (1.0, "Ana Ruiz", "roll back & watch")


# --- plain text and Meet --------------------------------------------------------------------------


def test_text_transcripts_in_the_common_shapes() -> None:
    bracketed = "---\nrecording_start: 2024-05-01T14:01:00Z\nplatform: meet\n---\n[00:00:05] Ana Ruiz: bridge open\n[00:00:09] Bo Chen: db is saturated\ncontinued on a second line\n"
    events, _ = read([text("a.txt", bracketed)])
    assert lines(events) == [
        ("14:01:05.000", "Ana Ruiz", "bridge open"),
        ("14:01:09.000", "Bo Chen", "db is saturated continued on a second line"),
    ]
    assert (
        events[0].attrs["platform"] == "meet" and events[0].attrs["start_from"] == "transcript file"
    )
    meet_docs = "INC-2041 bridge - Transcript\nAttendees\nAna Ruiz, Bo Chen\nTranscript\n00:00:00\nAna Ruiz: bridge open\nBo Chen: looking\n00:05:00\nBo Chen: rolled back\n"
    events, _ = read([text("m.txt", meet_docs), sidecar("m.meta.json")])
    assert lines(events) == [
        ("14:01:00.000", "Ana Ruiz", "bridge open"),
        ("14:01:00.000", "Bo Chen", "looking"),
        ("14:06:00.000", "Bo Chen", "rolled back"),
    ]
    assert len({e.key for e in events}) == 3
    captions = "[Ana Ruiz] 00:00:03\nNote: we are live\n\n[Bo Chen] 00:00:08\nrolling back\n"
    events, _ = read([text("z.txt", captions), sidecar("z.meta.json")])
    assert lines(events) == [
        ("14:01:03.000", "Ana Ruiz", "Note: we are live"),
        ("14:01:08.000", "Bo Chen", "rolling back"),
    ]


def test_meet_api_entries_with_participants() -> None:
    record = "conferenceRecords/abc-defg-hij"
    entries = {
        "transcriptEntries": [
            {
                "name": f"{record}/transcripts/t1/entries/e2",
                "participant": f"{record}/participants/p2",
                "text": "rolling back",
                "languageCode": "en-US",
                "startTime": "2024-05-01T14:03:10.500Z",
                "endTime": "2024-05-01T14:03:12Z",
            },
            {
                "name": f"{record}/transcripts/t1/entries/e1",
                "participant": f"{record}/participants/p1",
                "text": "db is saturated",
                "languageCode": "en-US",
                "startTime": "2024-05-01T14:03:00Z",
                "endTime": "2024-05-01T14:03:04Z",
            },
            {
                "name": f"{record}/transcripts/t1/entries/e3",
                "participant": f"{record}/participants/p2",
                "text": "done",
                "languageCode": "en-US",
                "startTime": "2024-05-01T14:03:13Z",
                "endTime": "2024-05-01T14:03:14Z",
            },
        ],
        "nextPageToken": "",
    }
    people = {
        "participants": [
            {
                "name": f"{record}/participants/p1",
                "earliestStartTime": "2024-05-01T14:00:00Z",
                "signedinUser": {"user": "users/1", "displayName": "Ana Ruiz"},
            },
            {
                "name": f"{record}/participants/p2",
                "earliestStartTime": "2024-05-01T14:00:00Z",
                "anonymousUser": {"displayName": "Bo (guest)"},
            },
        ]
    }
    assert doc_shape(Doc("e.json", entries)) == "meet_entries"
    assert doc_shape(Doc("p.json", people)) == "meet_participants"
    events, report = read([Doc("e.json", entries), Doc("p.json", people)])
    assert lines(events) == [
        ("14:03:00.000", "Ana Ruiz", "db is saturated"),
        ("14:03:10.500", "Bo (guest)", "rolling back done"),
    ]
    assert (
        events[0].key.startswith(f"transcripts:{record}/transcripts/t1:")
        and events[0].attrs["platform"] == "meet"
    )
    assert events[0].provenance.record == "transcriptEntries[1]"
    assert report.records == 3
    alone, _ = read([Doc("e.json", entries)])
    assert {e.actor.name for e in alone if e.actor} == {
        "Meet participant p1",
        "Meet participant p2",
    }


def test_meet_metadata_is_claimed_as_context() -> None:
    transcript = {
        "name": "conferenceRecords/abc/transcripts/t1",
        "state": "FILE_GENERATED",
        "startTime": "2024-05-01T14:00:05Z",
        "endTime": "2024-05-01T14:20:00Z",
        "docsDestination": {"document": "1x", "exportUri": "https://docs.google.com/document/d/1x"},
    }
    assert doc_shape(Doc("t.json", transcript)) == "meet_metadata"
    assert read([Doc("t.json", transcript)]) == (
        [],
        SourceReport(name="transcripts", files=["t.json"]),
    )


# --- where the start comes from ------------------------------------------------------------------


def test_start_precedence_sidecar_then_file_then_yaml_then_api_then_zoom_name() -> None:
    body = ZOOM_VTT.replace("WEBVTT\n", "WEBVTT\n\nNOTE recording_start: 2024-05-01T15:00:00Z\n", 1)
    name = "GMT20240501-160000_Recording.transcript.vtt"
    yaml_meta = {"transcripts": {name: "2024-05-01T17:00:00Z"}}
    cases = [
        (
            [text(name, body), sidecar("GMT20240501-160000_Recording.meta.json")],
            yaml_meta,
            "sidecar",
            "14:01",
        ),
        ([text(name, body)], yaml_meta, "transcript file", "15:00"),
        ([text(name, ZOOM_VTT)], yaml_meta, "incident.yaml", "17:00"),
        ([text(name, ZOOM_VTT)], {}, "Zoom file name (GMT…)", "16:00"),
    ]
    for docs, meta, how, hhmm in cases:
        events, _ = read(docs, **meta)
        assert events[0].attrs["start_from"] == how
        assert events[0].attrs["recording_start"].startswith(f"2024-05-01T{hhmm}"), how


def test_api_metadata_dates_a_transcript_named_by_its_id() -> None:
    call = {
        "id": "MSMjMCMjNzU3ODc2ZDY",
        "meetingId": "MSo1",
        "createdDateTime": "2024-05-01T14:01:05Z",
        "transcriptContentUrl": "https://graph.microsoft.com/x",
    }
    events, _ = read(
        [text("teams-MSMjMCMjNzU3ODc2ZDY.vtt", TEAMS_VTT), Doc("calls.json", {"value": [call]})]
    )
    assert events[0].attrs["start_from"] == "API metadata (calls.json)"
    assert events[0].at == datetime(2024, 5, 1, 14, 1, 6, 500000, tzinfo=UTC)
    zoom = {
        "uuid": "u==",
        "id": 857,
        "topic": "Bridge",
        "start_time": "2024-05-01T14:00:30Z",
        "recording_files": [
            {
                "id": "f-vtt-0001",
                "recording_start": "2024-05-01T14:01:00Z",
                "file_type": "TRANSCRIPT",
                "download_url": "https://zoom.us/rec/download/x",
            },
        ],
    }
    events, _ = read([text("zoom-857-f-vtt-0001.vtt", ZOOM_VTT), Doc("rec.json", zoom)])
    assert (
        events[0].at == T0.replace(second=2, microsecond=100000)
        and events[0].attrs["transcript"] == "Bridge"
    )


def test_a_transcript_without_a_start_is_an_error_naming_the_fix() -> None:
    with pytest.raises(BundleError) as info:
        read([text("calls/bridge.vtt", ZOOM_VTT)])
    assert info.value.path == "calls/bridge.vtt" and "no recording start" in info.value.message
    assert (
        info.value.hint is not None
        and "bridge.meta.json" in info.value.hint
        and "transcripts:" in info.value.hint
    )
    events, report = read([text("calls/bridge.vtt", ZOOM_VTT)], lenient=True)
    assert events == [] and report.records == 8 and sum(report.skipped.values()) == 8


def test_naive_starts_take_the_incident_timezone() -> None:
    docs = [text("b.vtt", ZOOM_VTT), Doc("b.meta.json", {"recording_start": "2024-05-01T16:01:00"})]
    with pytest.raises(BundleError, match="no time zone"):
        read(docs)
    events, _ = read(docs, tz="Europe/Madrid")
    assert events[0].at == T0.replace(second=2, microsecond=100000)


def test_an_unused_sidecar_is_counted() -> None:
    _, report = read([sidecar("lonely.meta.json")])
    assert report.skipped == {"sidecar matches no transcript file: lonely.meta.json": 1}


def test_a_broken_transcript_is_one_error() -> None:
    broken = "WEBVTT\n\n1\nno timing line here\n"
    with pytest.raises(BundleError) as info:
        read([text("x.vtt", broken), sidecar("x.meta.json")])
    assert info.value.record == "line 3" and "timing" in info.value.message
    _, report = read([text("x.vtt", broken), sidecar("x.meta.json")], lenient=True)
    assert sum(n for r, n in report.skipped.items() if r.startswith("invalid transcript")) == 1


# --- merging --------------------------------------------------------------------------------------


def vtt(*cues: tuple[float, float, str]) -> str:
    blocks = [f"{clock(a)} --> {clock(b)}\n{t}" for a, b, t in cues]
    return "WEBVTT\n\n" + "\n\n".join(blocks) + "\n"


def test_merging_stops_at_long_pauses_long_spans_and_other_speakers() -> None:
    body = vtt(
        (0, 2, "Ana: one"),
        (2.5, 4, "Ana: two"),  # merged
        (4 + MERGE_GAP + 1, 40, "Ana: after a pause"),  # a new line
        (41, 60, "Ana: a"),
        (61, 41 + MERGE_SPAN + 5, "Ana: b"),  # starts within the span: merged
        (41 + MERGE_SPAN + 6, 200, "Ana: c"),  # beyond the span: a new line
        (201, 202, "Bo: other"),
        (202.5, 203, "Ana: back"),
    )
    events, report = read([text("m.vtt", body), sidecar("m.meta.json")])
    assert [e.text for e in events] == ["one two", "after a pause a b", "c", "other", "back"]
    assert report.skipped == {"cue merged into the same speaker's line before it": 3}


def test_cues_without_a_speaker_are_never_merged_and_empty_ones_counted() -> None:
    body = vtt((0, 1, "one"), (1, 2, "two"), (2, 3, ""))
    events, report = read([text("cc.vtt", body), sidecar("cc.meta.json")])
    assert [(e.actor, e.text) for e in events] == [(None, "one"), (None, "two")]
    assert report.skipped == {"empty cue (no words)": 1}


def test_a_colon_in_a_few_cues_is_not_a_speaker() -> None:
    body = vtt((0, 1, "Note: the pool"), (1, 2, "is full"), (2, 3, "and slow"))
    events, _ = read([text("n.vtt", body), sidecar("n.meta.json")])
    assert [e.text for e in events] == ["Note: the pool", "is full", "and slow"]


def test_parse_text_ignores_lines_before_the_first_time() -> None:
    parsed = parse_text("Bridge call\nAttendees: Ana, Bo\n00:00:01 Ana: hi\n")
    assert [(c.start, c.speaker, c.text) for c in parsed.cues] == [(1.0, "Ana", "hi")]


# --- recognizing files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "data", "fmt"),
    [
        ("notes.txt", "Runbook\nrestart the pool, then watch the dashboard\n", "text"),
        ("notes.txt", "12:00 lunch\n", "text"),
        ("README.md", "WEBVTT?", "text"),
        (
            "x.json",
            {
                "value": [
                    {
                        "id": "1",
                        "createdDateTime": "2024-05-01T14:00:00Z",
                        "body": {"content": "hi"},
                        "from": None,
                    }
                ]
            },
            "json",
        ),
        ("x.json", [{"id": "ABC", "createdDateTime": "2024-05-01T14:00:00Z"}], "json"),
        ("x.json", {"recording_files": []}, "json"),
        ("x.json", {"name": "spaces/abc"}, "json"),
        (
            "x.jsonl",
            [{"startTime": "2024-05-01T14:00:00Z", "text": "x", "participant": "p"}],
            "jsonl",
        ),
    ],
)
def test_claims_only_transcript_shapes(rel: str, data: Any, fmt: str) -> None:
    assert not CONNECTOR.claims(Doc(rel=rel, data=data, fmt=fmt))  # type: ignore[arg-type]


def test_a_bundle_with_transcripts_and_other_text(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    (bundle / "transcripts").mkdir(parents=True)
    (bundle / "incident.yaml").write_text("id: INC-2041\ntitle: Checkout\n")
    (bundle / "transcripts" / "bridge.vtt").write_text(ZOOM_VTT)
    (bundle / "transcripts" / "bridge.meta.json").write_text(json.dumps({"recording_start": START}))
    (bundle / "transcripts" / "notes.txt").write_text("todo: write the postmortem\n")
    (bundle / "transcripts" / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    raw = load_bundle(bundle, connectors=registry.connectors())
    (report,) = raw.reports
    assert report.name == "transcripts" and report.events == 6
    assert raw.bundle_report.skipped == {
        "not a data file: transcripts/latin1.txt": 1,
        "not a data file: transcripts/notes.txt": 1,
    }
    for path in sorted((bundle / "transcripts").glob("bridge*")):
        fmt = "json" if path.suffix == ".json" else "text"
        data: Any = json.loads(path.read_text()) if fmt == "json" else path.read_text()
        doc = Doc(rel=f"transcripts/{path.name}", data=data, fmt=fmt)  # type: ignore[arg-type]
        assert [c.name for c in registry.connectors() if c.claims(doc)] == ["transcripts"]
