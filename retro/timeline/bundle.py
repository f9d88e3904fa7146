"""Read an incident bundle: incident.yaml plus vendor files, recognized by their content."""

from __future__ import annotations

import csv
import io
import json
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import ValidationError

from retro.connector import EARLIEST, LATEST, Connector, Doc, ReadContext
from retro.errors import BundleError, ConfigError, RetroError
from retro.files import load_yaml
from retro.models import IncidentMeta, Progress, SourceReport, TimelineEvent, no_progress

DATA_SUFFIXES = {".json", ".jsonl", ".ndjson", ".csv"}
# Text files (meeting transcripts) are offered to the connectors as decoded text; one that no
# connector claims, is not UTF-8 or is too big to be a transcript stays "not a data file".
TEXT_SUFFIXES = {".vtt", ".srt", ".txt"}
MAX_TEXT_BYTES = 64 * 1024 * 1024
# Limits on what one bundle may hold (docs/bundle.md, "Limits"): a zipped export is read
# member by member, and a member that claims or turns out to exceed them is never inflated.
MAX_FILE_BYTES = 256 * 1024 * 1024  # one data file, or one member of a zip, uncompressed
MAX_ZIP_BYTES = 1024 * 1024 * 1024  # all the data members of one zip, uncompressed
MAX_ZIP_RATIO = 100  # uncompressed / compressed size of a member bigger than RATIO_FLOOR
RATIO_FLOOR = 1024 * 1024
MAX_ZIP_MEMBERS = 100_000
MAX_JSON_DEPTH = 128  # arrays and objects inside each other; vendor JSON nests under 30
MAX_INCIDENT_YAML_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024
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
    if meta_path.stat().st_size > MAX_INCIDENT_YAML_BYTES:
        raise BundleError(
            meta_path,
            "is over 1 MB: not an incident.yaml",
            hint="see docs/bundle.md for the fields",
        )
    try:
        text = meta_path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BundleError(
            meta_path, f"is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
        ) from None
    raw = load_yaml(text, meta_path)
    if not isinstance(raw, dict):
        raise BundleError(meta_path, "must be a mapping", hint="start with `id: INC-123`")
    raw = _normalize_meta_keys(raw)
    try:
        meta = IncidentMeta.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top)"
        raise BundleError(
            meta_path, f"{loc}: {err['msg']}", hint="see docs/bundle.md for the fields"
        ) from None
    except (OverflowError, ValueError) as exc:  # a time at the calendar's edge, e.g. year 1
        raise BundleError(
            meta_path, f"a time is out of range ({exc})", hint="see docs/bundle.md for the fields"
        ) from None
    window = meta.window
    for name, at in (("start", window.start), ("end", window.end)):
        if at is not None and not EARLIEST <= at < LATEST:
            raise BundleError(
                meta_path,
                f"window.{name} {at:%Y-%m-%d %H:%M} UTC is outside the years 1970 to 2199",
                record="window",
                hint="fix the time, or remove window: to let retro choose it",
            )
    if window.start is not None and window.end is not None and window.end <= window.start:
        raise BundleError(
            meta_path,
            f"window.end {window.end:%Y-%m-%d %H:%M:%S} UTC is not after window.start "
            f"{window.start:%Y-%m-%d %H:%M:%S} UTC",
            record="window",
            hint="swap or fix the two times, or remove window: to let retro choose it",
        )
    return meta


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


def iter_docs(path: Path, report: SourceReport, *, lenient: bool = False) -> Iterator[Doc]:
    """Every data document in the bundle, parsed, in a stable order.

    A file that does not parse (or breaks a limit) stops the run; with lenient it is skipped
    and counted in the bundle's report instead.
    """
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if any(part.startswith(".") for part in file.relative_to(path).parts):
            continue
        if file.name in IGNORED_NAMES:
            continue
        try:
            yield from _file_docs(file, rel, report, lenient)
        except BundleError as err:
            if not lenient:
                raise
            _skip_file(report, err)


def _skip_file(report: SourceReport, err: BundleError) -> None:
    report.skip(f"unreadable file skipped: {err.message}"[:200])
    report.status = "partial"


def _file_docs(file: Path, rel: str, report: SourceReport, lenient: bool) -> Iterator[Doc]:
    suffix = file.suffix.lower()
    if suffix == ".zip":
        yield from _zip_docs(file, rel, report, lenient)
    elif suffix in DATA_SUFFIXES:
        _check_size(rel, file.stat().st_size)
        yield _parse(rel, file.read_bytes(), suffix, file)
    elif suffix in TEXT_SUFFIXES and file.stat().st_size <= MAX_TEXT_BYTES:
        text = _text_doc(rel, file.read_bytes(), file)
        if text is None:
            report.skip(f"not a data file: {rel}")
        else:
            yield text
    else:
        report.skip(f"not a data file: {rel}")


def _check_size(rel: str, size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise BundleError(
            rel,
            f"is {size / 2**20:.0f} MiB, over the {MAX_FILE_BYTES // 2**20} MiB limit for one file",
            hint="split the export, or pass --lenient to skip it (docs/bundle.md, Limits)",
        )


def _zip_docs(file: Path, rel: str, report: SourceReport, lenient: bool) -> Iterator[Doc]:
    """The data members of a zip, one at a time, each checked against the limits first."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise BundleError(
            rel, f"not a valid zip archive ({exc})", hint="re-download the export"
        ) from None
    with archive:
        members = sorted(
            (
                info
                for info in archive.infolist()
                if not info.is_dir() and "__MACOSX" not in info.filename
            ),
            key=lambda info: info.filename,
        )
        if len(members) > MAX_ZIP_MEMBERS:
            raise BundleError(
                rel,
                f"holds {len(members)} files, over the limit of {MAX_ZIP_MEMBERS}",
                hint="split the export (docs/bundle.md, Limits)",
            )
        budget = MAX_ZIP_BYTES
        for info in members:
            name = f"{rel}/{info.filename}"
            suffix = Path(info.filename).suffix.lower()
            wanted = suffix in DATA_SUFFIXES or (
                suffix in TEXT_SUFFIXES and info.file_size <= MAX_TEXT_BYTES
            )
            if not wanted:
                continue
            try:
                _check_member(name, info, budget)
                budget -= info.file_size
                payload = _inflate(archive, info, name)
                if suffix in DATA_SUFFIXES:
                    yield _parse(name, payload, suffix, None)
                elif (text := _text_doc(name, payload, None)) is not None:
                    yield text
            except BundleError as err:
                if not lenient:
                    raise
                _skip_file(report, err)


def _check_member(name: str, info: zipfile.ZipInfo, budget: int) -> None:
    """Refuse a member whose declared size or compression ratio is a zip bomb's."""
    hint = "this looks like a zip bomb; pass --lenient to skip the member (docs/bundle.md, Limits)"
    _check_size(name, info.file_size)
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_ZIP_RATIO * max(1, info.compress_size):
        ratio = info.file_size / max(1, info.compress_size)
        raise BundleError(
            name,
            f"expands {ratio:.0f} times ({info.compress_size} to {info.file_size} bytes), over "
            f"the limit of {MAX_ZIP_RATIO}",
            hint=hint,
        )
    if info.file_size > budget:
        raise BundleError(
            name,
            f"takes the archive over {MAX_ZIP_BYTES // 2**20} MiB uncompressed",
            hint=hint,
        )


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    """A member's bytes, read in chunks and never past its declared size.

    zipfile stops at the declared size and checks the CRC at the end, so a member that lies
    about its size fails instead of growing without bound.
    """
    chunks: list[bytes] = []
    total = 0
    try:
        with archive.open(info) as fh:
            while chunk := fh.read(_CHUNK):
                total += len(chunk)
                if total > info.file_size or total > MAX_FILE_BYTES:
                    raise BundleError(
                        name, "is bigger than its zip entry says", hint="re-download the export"
                    )
                chunks.append(chunk)
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        NotImplementedError,
        RuntimeError,
        ValueError,
    ) as exc:
        raise BundleError(
            name, f"cannot be extracted ({exc})", hint="re-download the export"
        ) from None
    return b"".join(chunks)


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
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise BundleError(
            rel, f"malformed CSV ({exc})", hint="fix the file or export it again"
        ) from None
    return Doc(rel=rel, data=rows, fmt="csv", path=path)


def _text_doc(rel: str, payload: bytes, path: Path | None) -> Doc | None:
    """A text file as a Doc of its decoded text; None when it is not UTF-8."""
    try:
        return Doc(rel=rel, data=payload.decode("utf-8-sig"), fmt="text", path=path)
    except UnicodeDecodeError:
        return None


def _json(rel: str, text: str) -> Any:
    if not text.strip():
        raise BundleError(rel, "file is empty", hint="remove it or export it again")
    try:
        return loads(text)
    except JsonTooDeep as exc:
        raise BundleError(
            rel,
            exc.msg,
            hint="this is not a vendor export; remove the file (docs/bundle.md, Limits)",
        ) from None
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
    """json.loads, three times faster on big exports, refusing nesting over MAX_JSON_DEPTH.

    orjson parses what the standard library does, except NaN, integers beyond 64 bits and
    lone surrogate escapes ("\\ud800"); those documents, and malformed ones, go to
    json.loads, whose error messages name the line and column. A lone surrogate is not a
    character and no UTF-8 output can hold it, so it becomes U+FFFD there.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc).lower():
            raise _too_deep() from None
        try:
            value = _without_lone_surrogates(json.loads(text))
        except RecursionError:
            raise _too_deep() from None
    check_depth(value)
    return value


class JsonTooDeep(json.JSONDecodeError):
    """JSON nested deeper than MAX_JSON_DEPTH."""


def _too_deep() -> JsonTooDeep:
    return JsonTooDeep(f"nested deeper than {MAX_JSON_DEPTH} levels", "", 0)


_PAD = MAX_JSON_DEPTH  # see check_depth


def check_depth(value: Any) -> None:
    """Raise JsonTooDeep when value nests arrays and objects deeper than MAX_JSON_DEPTH.

    Later stages (pydantic, orjson output) stop at 255 levels, and Python's own recursion at
    1000. orjson writes at most 254 levels, so writing the value wrapped in 254 - MAX levels
    of lists is the depth check, at C speed and without building the text twice.
    """
    if not isinstance(value, list | dict):
        return
    wrapped: Any = value
    for _ in range(254 - _PAD):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except orjson.JSONEncodeError as exc:
        if "recursion" in str(exc).lower():
            raise _too_deep() from None
        # Anything else (an integer beyond 64 bits) is not about depth.


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
        except JsonTooDeep as exc:
            raise BundleError(
                rel,
                exc.msg,
                record=f"line {number}",
                hint="remove the record (docs/bundle.md, Limits)",
            ) from None
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
    for doc in iter_docs(path, bundle_report, lenient=lenient):
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
    if doc.fmt == "text":  # notes and logs beside the data are not data files
        report.skip(f"not a data file: {doc.rel}")
        return
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
        # One line, however the exception prints itself (pydantic's span several).
        what = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
        if not ctx.lenient:
            raise BundleError(
                docs[0].rel if len(docs) == 1 else f"{connector.name} files",
                f"{connector.name} could not read its data ({what})",
                hint="check the files against docs/connectors, or pass --lenient to skip this source (RETRO_DEBUG=1 shows the traceback)",
            ) from exc
        ctx.report.status = "failed"
        ctx.report.error = what
        return []
    ctx.report.events = len(events)
    if not events:
        ctx.report.status = "empty"
    elif ctx.report.status == "ok" and any(r.startswith("invalid") for r in ctx.report.skipped):
        # Skips on purpose (merged repeats, other channels, export extras) are not a loss.
        ctx.report.status = "partial"
    return events
