"""Read an incident bundle: incident.yaml plus vendor files, recognized by their content."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import yaml
from pydantic import ValidationError

from retro.connector import Connector, Doc, ReadContext
from retro.errors import BundleError, ConfigError, RetroError
from retro.models import IncidentMeta, Progress, SourceReport, TimelineEvent, no_progress

DATA_SUFFIXES = {".json", ".jsonl", ".ndjson", ".csv"}
# Files that belong to a bundle's surroundings, not its data (evals keep expected.yaml beside it).
IGNORED_NAMES = {"incident.yaml", "incident.yml", "expected.yaml", "expected.yml"}


@dataclass
class RawBundle:
    """What a bundle holds before normalization."""

    path: Path
    incident: IncidentMeta
    events: list[TimelineEvent]
    reports: list[SourceReport]
    bundle_report: SourceReport = field(default_factory=lambda: SourceReport(name="bundle"))


def read_incident(path: Path) -> IncidentMeta:
    """Parse BUNDLE/incident.yaml."""
    meta_path = next(
        (path / n for n in ("incident.yaml", "incident.yml") if (path / n).is_file()), None
    )
    if meta_path is None:
        raise BundleError(
            path / "incident.yaml",
            "missing",
            hint="create it with at least `id: INC-123` (see docs/bundle.md)",
        )
    try:
        raw = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise BundleError(
            meta_path,
            f"invalid YAML ({getattr(exc, 'problem', exc)})",
            record=where,
            hint="fix the YAML syntax",
        ) from None
    if not isinstance(raw, dict):
        raise BundleError(meta_path, "must be a mapping", hint="start with `id: INC-123`")
    raw = _normalize_meta_keys(raw)
    try:
        return IncidentMeta.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top)"
        raise BundleError(
            meta_path, f"{loc}: {err['msg']}", hint="see docs/bundle.md for the fields"
        ) from None


def _normalize_meta_keys(raw: dict[str, Any]) -> dict[str, Any]:
    """Accept a few natural spellings: `slack: {channels: […]}`, numeric ids, `window: {start, end}`."""
    raw = dict(raw)
    if "id" in raw and not isinstance(raw["id"], str):
        raw["id"] = str(raw["id"])
    slack = raw.get("slack")
    if isinstance(slack, dict) and "channels" in slack and "slack_channels" not in raw:
        raw["slack_channels"] = slack["channels"]
    if isinstance(raw.get("services"), str):
        raw["services"] = [raw["services"]]
    if isinstance(raw.get("severity"), int):
        raw["severity"] = f"SEV{raw['severity']}"
    return raw


def timezone_of(meta: IncidentMeta) -> ZoneInfo | None:
    if not meta.timezone:
        return None
    try:
        return ZoneInfo(meta.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"incident.yaml: unknown timezone {meta.timezone!r}",
            hint="use an IANA name such as Europe/Berlin or UTC",
        ) from None


def iter_docs(path: Path, report: SourceReport) -> Iterator[Doc]:
    """Every data document in the bundle, parsed, in a stable order."""
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if any(part.startswith(".") for part in file.relative_to(path).parts):
            continue
        if file.name in IGNORED_NAMES:
            continue
        suffix = file.suffix.lower()
        if suffix == ".zip":
            yield from _zip_docs(file, rel)
        elif suffix in DATA_SUFFIXES:
            yield _parse(rel, file.read_bytes(), suffix, file)
        else:
            report.skip(f"not a data file: {rel}")


def _zip_docs(file: Path, rel: str) -> Iterator[Doc]:
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        raise BundleError(
            rel, "not a valid zip archive", hint="re-download the Slack export"
        ) from None
    with archive:
        for name in sorted(archive.namelist()):
            suffix = Path(name).suffix.lower()
            if name.endswith("/") or suffix not in DATA_SUFFIXES or "__MACOSX" in name:
                continue
            yield _parse(f"{rel}/{name}", archive.read(name), suffix, None)


def _parse(rel: str, payload: bytes, suffix: str, path: Path | None) -> Doc:
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BundleError(
            rel, f"not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8"
        ) from None
    if suffix == ".json":
        return Doc(rel=rel, data=_json(rel, text), fmt="json", path=path)
    if suffix in (".jsonl", ".ndjson"):
        return Doc(rel=rel, data=_jsonl(rel, text), fmt="jsonl", path=path)
    return Doc(rel=rel, data=list(csv.DictReader(io.StringIO(text))), fmt="csv", path=path)


def _json(rel: str, text: str) -> Any:
    if not text.strip():
        raise BundleError(rel, "file is empty", hint="remove it or export it again")
    try:
        return loads(text)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip()) - 1
        what = "truncated JSON" if truncated else f"malformed JSON ({exc.msg})"
        raise BundleError(
            rel,
            what,
            record=f"line {exc.lineno} column {exc.colno}",
            hint="fix the file or export it again",
        ) from None


def loads(text: str) -> Any:
    """json.loads, three times faster on big exports.

    orjson parses what the standard library does, except NaN, integers beyond 64 bits and
    lone surrogate escapes ("\\ud800"); those documents, and malformed ones, go to
    json.loads, whose error messages name the line and column. A lone surrogate is not a
    character and no UTF-8 output can hold it, so it becomes U+FFFD there.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _without_lone_surrogates(json.loads(text))


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        if value.isascii():
            return value
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def _jsonl(rel: str, text: str) -> list[Any]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(loads(line))
        except json.JSONDecodeError as exc:
            raise BundleError(
                rel,
                f"malformed JSON ({exc.msg})",
                record=f"line {number}",
                hint="each line must be one JSON object",
            ) from None
    return rows


def claim(doc: Doc, candidates: list[Connector]) -> Connector | None:
    for connector in candidates:
        try:
            if connector.claims(doc):
                return connector
        except Exception:  # a connector's sniffing must never break reading the others
            continue
    return None


def _folder_source(rel: str, names: set[str]) -> str | None:
    top = rel.split("/", 1)[0]
    return top if "/" in rel and top in names else None


def load(
    path: Path,
    *,
    connectors: list[Connector],
    lenient: bool = False,
    progress: Progress = no_progress,
) -> RawBundle:
    """Read a bundle folder into events and one SourceReport per source."""
    if not path.exists():
        raise BundleError(path, "does not exist", hint="pass the bundle folder with --bundle")
    if not path.is_dir():
        raise BundleError(path, "is not a folder", hint="a bundle is a folder with incident.yaml")
    incident = read_incident(path)
    tz = timezone_of(incident)
    bundle_report = SourceReport(name="bundle")
    claimed: dict[str, list[Doc]] = {}
    by_name = {c.name: c for c in connectors}
    for doc in iter_docs(path, bundle_report):
        owner = claim(doc, connectors)
        if owner is None:
            _unclaimed(doc, bundle_report, by_name, lenient)
            continue
        claimed.setdefault(owner.name, []).append(doc)
    if not claimed:
        raise BundleError(
            path,
            "the bundle holds no source data",
            hint="add files one of the connectors reads ("
            + ", ".join(c.title for c in connectors)
            + "; docs/bundle.md)",
        )
    events: list[TimelineEvent] = []
    reports: list[SourceReport] = []
    while claimed:
        # Pop each source's documents, so their parsed JSON is freed once they are read.
        name, docs = next(iter(claimed.items()))
        del claimed[name]
        report = SourceReport(name=name, files=[d.rel for d in docs])
        ctx = ReadContext(
            bundle=path, incident=incident, report=report, tz=tz, lenient=lenient, progress=progress
        )
        events.extend(_read_source(by_name[name], docs, ctx))
        reports.append(report)
        progress(f"read {name}", len(events), None)
    return RawBundle(
        path=path, incident=incident, events=events, reports=reports, bundle_report=bundle_report
    )


def _unclaimed(
    doc: Doc, report: SourceReport, by_name: dict[str, Connector], lenient: bool
) -> None:
    source = _folder_source(doc.rel, set(by_name))
    if source is not None and source in by_name and not lenient:
        title = getattr(by_name[source], "title", source)
        raise BundleError(
            doc.rel,
            f"not a {title} file retro knows",
            hint=f"see docs/connectors/{source}.md for the shapes it reads, or move the file out of {source}/",
        )
    report.skip(f"unrecognized file: {doc.rel}")


def _read_source(connector: Connector, docs: list[Doc], ctx: ReadContext) -> list[TimelineEvent]:
    try:
        events = list(connector.read_bundle(docs, ctx))
    except RetroError:
        raise
    except Exception as exc:
        if not ctx.lenient:
            raise BundleError(
                docs[0].rel if len(docs) == 1 else f"{connector.name} files",
                f"{connector.name} could not read its data ({type(exc).__name__}: {exc})",
                hint="check the files against docs/connectors, or pass --lenient to skip this source (RETRO_DEBUG=1 shows the traceback)",
            ) from exc
        ctx.report.status = "failed"
        ctx.report.error = f"{type(exc).__name__}: {exc}"
        return []
    ctx.report.events = len(events)
    if not events:
        ctx.report.status = "empty"
    elif ctx.report.status == "ok" and any(r.startswith("invalid") for r in ctx.report.skipped):
        # Skips on purpose (merged repeats, other channels, export extras) are not a loss.
        ctx.report.status = "partial"
    return events
