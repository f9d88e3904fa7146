"""Transcripts file mode against every licensed sample in tests/fixtures/transcripts
(MANIFEST.md): a real Zoom cloud-recording transcript and its closed captions, WebVTT voice
tags, Graph documentation's Teams transcript content, metadataContent and callTranscript
bodies, and the CLI for Microsoft 365's transcript output.

No licensed Google Meet sample was found; tests/test_transcripts.py covers the documented
`transcriptEntries` and `participants` shapes with bodies written for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.transcripts import TranscriptsConnector
from connectors.transcripts.read import doc_shape
from retro import registry
from retro.connector import Doc, ReadContext
from retro.errors import BundleError
from retro.models import IncidentMeta, SourceReport, TimelineEvent

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
CONNECTOR = TranscriptsConnector()
ZOOM = "zoom_cloud_recording_GMT20240124-202901_Recording.transcript.vtt"
ZOOM_CC = "zoom_cloud_recording_GMT20240124-202901_Recording.cc.vtt"
VOICES = "voice_tag_vtt_synthetic_intro_statistics_week1.vtt"
TEAMS_CONTENT = "teams_graph_v1_calltranscript_content_graphdocs.vtt"
TEAMS_METADATA = "teams_graph_v1_calltranscript_metadatacontent_graphdocs.vtt"
SHAPES = {
    ZOOM: "vtt",
    ZOOM_CC: "vtt",
    VOICES: "vtt",
    TEAMS_CONTENT: "vtt",
    TEAMS_METADATA: "vtt",
    "teams_graph_v1_calltranscript_get_graphdocs.json": "teams_transcripts",
    "teams_graph_transcripts_list_cli-m365-docs_output.json": "teams_transcripts",
    "teams_graph_transcript_get_cli-m365-docs_output.json": "teams_transcripts",
    "teams_graph_beta_transcripts_list_value_array_cli-m365.json": "teams_transcripts",
    "teams_graph_beta_transcript_get_cli-m365.json": "teams_transcripts",
}


def doc(name: str, rel: str | None = None) -> Doc:
    path = FIXTURES / name
    if path.suffix == ".json":
        return Doc(rel=rel or name, data=json.loads(path.read_text(encoding="utf-8")), path=path)
    return Doc(rel=rel or name, data=path.read_text(encoding="utf-8"), fmt="text", path=path)


def read(
    docs: list[Doc], *, lenient: bool = False, **meta: Any
) -> tuple[list[TimelineEvent], SourceReport]:
    report = SourceReport(name="transcripts")
    ctx = ReadContext(
        bundle=FIXTURES, incident=IncidentMeta(id="conf", **meta), report=report, lenient=lenient
    )
    return list(CONNECTOR.read_bundle(docs, ctx)), report


def test_every_sample_is_known_and_claimed_by_transcripts_alone() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(SHAPES)
    for name, shape in SHAPES.items():
        assert doc_shape(doc(name)) == shape, name
        assert [c.name for c in registry.connectors() if c.claims(doc(name))] == ["transcripts"], (
            name
        )


def test_the_real_zoom_transcript() -> None:
    events, report = read([doc(ZOOM)])
    assert report.records == 102  # every numbered cue
    assert report.records == len(events) + sum(report.skipped.values())
    speakers = {"Conor Healy", "Dr. Melissa Ko", "Ryan Sloan", "Shreeharsh Kelkar", "Srijani Ghosh"}
    assert {e.actor.name for e in events if e.actor} == speakers
    assert [e.text for e in events if e.actor is None] == ["Hmm."]  # the one cue Zoom left unnamed
    first = events[0]
    # Zoom names the file GMT<date>-<time>: the recording's start in UTC.
    assert first.at == datetime(2024, 1, 24, 20, 29, 1, 50000, tzinfo=UTC)
    assert (first.text, first.attrs["start_from"], first.attrs["platform"]) == (
        "Hi!",
        "Zoom file name (GMT…)",
        "zoom",
    )
    assert first.provenance.record == "cue 1"
    assert [e.at for e in events] == sorted(e.at for e in events)
    # No speaker turn merges a pause longer than 30 s or spans more than two minutes.
    for e in events:
        start, end = (
            sum(float(x) * f for x, f in zip(e.attrs[k].split(":"), (3600, 60, 1), strict=True))
            for k in ("offset", "end_offset")
        )
        assert end - start <= 120 + 30
    assert all(e.attrs["low_trust"] for e in events)


def test_the_real_zoom_closed_captions_have_no_speakers() -> None:
    events, report = read([doc(ZOOM_CC)])
    assert report.records == len(events) == 100 and report.skipped == {}
    assert all(e.actor is None for e in events)
    assert events[0].at == datetime(2024, 1, 24, 20, 30, 9, tzinfo=UTC)  # cue at 00:01:08


def test_voice_tags_need_a_start_and_take_one_from_incident_yaml() -> None:
    with pytest.raises(BundleError, match="no recording start"):
        read([doc(VOICES)])
    events, report = read([doc(VOICES)], transcripts={VOICES: "2024-05-01T09:00:00Z"})
    speakers = [e.actor.name for e in events if e.actor]
    assert speakers[:4] == ["Professor Smith", "Student A", "Student B", "Student C"]
    assert events[0].text.startswith(
        "Good morning everyone, welcome to Introduction to Statistics."
    )
    assert events[0].attrs["cues"] == 3 and events[0].attrs["platform"] == "teams"
    assert report.records == len(events) + sum(report.skipped.values())


def test_graph_transcript_content_dated_by_its_calltranscript() -> None:
    # The content and the callTranscript body, named as the harvest names transcripts.
    call = doc("teams_graph_v1_calltranscript_get_graphdocs.json")
    content = doc(TEAMS_CONTENT, rel=f"teams-{call.data['id']}.vtt")
    (event,) = read([content, call])[0]
    assert event.at == datetime(2021, 9, 17, 6, 9, 24, 896803, tzinfo=UTC)
    assert (event.text, event.actor.name if event.actor else None) == (
        "This is a transcript test.",
        "User Name",
    )
    assert event.attrs["end_offset"] == "00:00:05.320"
    assert (
        event.attrs["start_from"]
        == "API metadata (teams_graph_v1_calltranscript_get_graphdocs.json)"
    )


def test_graph_metadata_content_has_its_own_times() -> None:
    (event,) = read([doc(TEAMS_METADATA)])[0]
    assert event.at == datetime(2023, 3, 8, 8, 22, 30, 46163, tzinfo=UTC)
    assert (event.text, event.attrs["start_from"]) == ("This is a transcription test.", "cue times")


@pytest.mark.parametrize("name", sorted(n for n in SHAPES if n.endswith(".json")))
def test_calltranscript_bodies_are_context(name: str) -> None:
    events, report = read([doc(name)])
    assert events == [] and report.records == 0 and report.skipped == {}


def test_beta_list_dates_a_transcript_named_by_its_id() -> None:
    listing = doc("teams_graph_beta_transcripts_list_value_array_cli-m365.json")
    second = listing.data[1]["id"]
    content = doc(TEAMS_CONTENT, rel=f"transcripts/teams-{second}.vtt")
    (event,) = read([content, listing])[0]
    assert event.at == datetime(2021, 9, 16, 18, 58, 58, 676069, tzinfo=UTC)
