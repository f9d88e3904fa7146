"""Meeting transcripts: Zoom, Microsoft Teams and Google Meet, as low-trust timeline evidence.

- `parse.py`: WebVTT, SubRip and plain-text transcripts to cues (voice tags, `Name: text`
  prefixes, Teams metadataContent JSON payloads).
- `meet.py`: Google Meet API bodies (transcript entries with absolute times, participants).
- `read.py`: file mode. Dates the cues (sidecar, the file itself, incident.yaml, the API's
  metadata or Zoom's GMT file name), merges one speaker's consecutive cues, maps speakers.
- `live.py`: live mode. The Zoom recordings API and the Teams online meeting transcripts API
  (`zoom.py`, `msteams.py`); each transcript is written with a sidecar, so it reads back dated.

Speech recognition mishears, so every event carries `attrs["low_trust"] = True` and the
connector declares `low_trust`: a transcript line may support a milestone, never be its only
evidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.transcripts import live, read
from retro.connector import Connector, Doc, IncidentRef, ReadContext
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["TranscriptsConnector"]


class TranscriptsConnector(Connector):
    """Bridge-call transcripts (WebVTT, SubRip, text, Meet API) as low-trust speaker turns."""

    name: ClassVar[str] = read.SOURCE
    title: ClassVar[str] = "Meeting transcripts"
    display: ClassVar[str] = "Meeting transcript"
    roles: ClassVar[frozenset[str]] = frozenset({"transcript"})
    order: ClassVar[int] = 14
    low_trust: ClassVar[bool] = True
    harvest_help: ClassVar[str] = (
        "zoom:<meeting-id-or-uuid> or teams:<organizer-user-id>/<meeting-id>"
    )
    Config: ClassVar[type[BaseModel]] = live.TranscriptsConfig
    docs_url: ClassVar[str] = "https://developers.zoom.us/docs/api/meetings/#tag/cloud-recording"

    def claims(self, doc: Doc) -> bool:
        return read.claims(doc)

    def read_bundle(self, docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
        return read.read_bundle(docs, ctx)

    def harvest(
        self,
        ref: IncidentRef,
        out: Path,
        config: BaseModel,
        progress: Progress = no_progress,
    ) -> SourceReport:
        return live.harvest(ref, out, config, progress)

    def check(self, config: BaseModel) -> list[str]:
        return live.check(config)
