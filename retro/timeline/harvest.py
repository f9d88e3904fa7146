"""Live sources: `retro harvest` (an incident's data from live APIs into a bundle folder) and
`retro sources check` (credentials and scopes of each source).

Each source is harvested on its own through its connector's live mode. One source's failure,
whatever its type, is recorded and the others still run; the caller decides what a failure
means for its exit code. The bundle's `.harvest.json` (a dot file, so the bundle reader skips
it) records each source's outcome: complete, or stopped with its error. A re-run with the same
targets and window does not fetch a complete source again (unless `refresh`), and a connector
whose harvest stopped resumes from its own checkpoint, so nothing already there is fetched or
written twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from retro import registry
from retro.config import connector_config
from retro.connector import Connector, IncidentRef
from retro.errors import BundleError, ConfigError, MissingCredential, RetroError
from retro.files import load_yaml, read_text, write_atomic
from retro.models import Progress, SourceReport, no_progress

MANIFEST = ".harvest.json"


@dataclass
class Outcome:
    """What one source's harvest did: its report, or the error that stopped it.

    `reused` is true when an earlier run had already harvested the source completely.
    """

    name: str
    report: SourceReport | None = None
    error: str | None = None
    reused: bool = False


class HarvestEntry(BaseModel):
    """One source in `.harvest.json`: what it was asked for, and how far it got."""

    targets: list[str] = Field(default_factory=list)
    since: str | None = None
    until: str | None = None
    complete: bool = False
    finished_at: str | None = None
    report: SourceReport


class HarvestManifest(BaseModel):
    """`.harvest.json`: the harvest's record of each source, kept in the bundle."""

    version: int = 1
    incident: str
    sources: dict[str, HarvestEntry] = Field(default_factory=dict)


def parse_targets(pairs: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
    """`SOURCE=WHAT` pairs (from `--from`) grouped by source, in the order given."""
    out: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, what = pair.partition("=")
        if not sep or not name.strip() or not what.strip():
            raise ConfigError(
                f"--from {pair!r} is not SOURCE=WHAT", hint="e.g. --from slack=inc-42-checkout"
            )
        out.setdefault(name.strip(), []).append(what.strip())
    return out


def wanted_sources(ref: IncidentRef) -> list[str]:
    """The sources `ref` asks for, in the registry's order; unknown names are an error."""
    known = registry.connector_classes()
    unknown = sorted(set(ref.targets) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown source {unknown[0]!r} in --from",
            hint=f"choose one of: {', '.join(sorted(known))} (`retro connectors list`)",
        )
    return [name for name in known if ref.of(name)]


def harvest(
    ref: IncidentRef,
    out_dir: Path,
    *,
    title: str | None = None,
    refresh: bool = False,
    progress: Progress = no_progress,
    log: Callable[[str], None] = lambda _m: None,
) -> list[Outcome]:
    """Write incident.yaml and every wanted source's files under out_dir.

    A source that an earlier run into the same folder harvested completely, for the same
    targets and window, is reused as it is unless `refresh`.
    """
    names = wanted_sources(ref)
    if not names:
        raise ConfigError(
            "nothing to harvest",
            hint="pass --from SOURCE=WHAT (e.g. --from slack=inc-42), or --slack-channel, "
            "--pagerduty, --opsgenie-alert, --jira or --alertmanager",
        )
    _make_folder(out_dir)
    write_incident_yaml(out_dir, ref, title)
    manifest = load_manifest(out_dir, ref.incident_id)
    outcomes: list[Outcome] = []
    for name in names:
        entry = _entry(name, ref)
        held = manifest.sources.get(name)
        if not refresh and held is not None and _still_complete(held, entry, out_dir):
            outcomes.append(Outcome(name, report=held.report, reused=True))
            log(
                f"  {name}: already harvested ({held.report.records} records); --refresh fetches it again"
            )
            continue
        outcome = _harvest_one(name, ref, out_dir, entry, manifest, progress)
        outcomes.append(outcome)
        if outcome.error:
            log(f"  {name}: failed: {outcome.error}")
        else:
            assert outcome.report is not None
            log(f"  {name}: {outcome.report.records} records, {len(outcome.report.files)} files")
    return outcomes


def _harvest_one(
    name: str,
    ref: IncidentRef,
    out_dir: Path,
    entry: HarvestEntry,
    manifest: HarvestManifest,
    progress: Progress,
) -> Outcome:
    """One source's harvest; any failure becomes its Outcome, and .harvest.json records it."""
    connector = registry.get(name)
    error: str | None = None
    report: SourceReport | None = None
    try:
        config = connector_config(name, connector.title, connector.Config)
        report = connector.harvest(ref, out_dir, config, progress)
    except RetroError as exc:
        error = _one_line(str(exc))
    except KeyboardInterrupt:
        _record(out_dir, manifest, name, entry, None, "interrupted")
        raise
    except Exception as exc:  # a connector's bug must not stop the other sources
        if os.environ.get("RETRO_DEBUG"):
            raise
        error = (
            f"{name}: unexpected {type(exc).__name__}: {_one_line(str(exc))[:200]}; run again "
            "with RETRO_DEBUG=1 for the traceback, and report it"
        )
    _record(out_dir, manifest, name, entry, report, error)
    return Outcome(name, report=report, error=error)


def _record(
    out_dir: Path,
    manifest: HarvestManifest,
    name: str,
    entry: HarvestEntry,
    report: SourceReport | None,
    error: str | None,
) -> None:
    """Write the source's outcome into .harvest.json (right away: a later crash keeps it)."""
    if report is None:
        present = _files_under(out_dir, name)
        report = SourceReport(
            name=name, status="partial" if present else "failed", files=present, error=error
        )
    entry = entry.model_copy(
        update={
            "complete": error is None,
            "report": report,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    manifest.sources[name] = entry
    write_atomic(out_dir / MANIFEST, manifest.model_dump_json(indent=2) + "\n", fsync=False)


def load_manifest(out_dir: Path, incident_id: str) -> HarvestManifest:
    """The bundle's .harvest.json; a missing, unreadable or foreign one starts afresh."""
    path = out_dir / MANIFEST
    try:
        manifest = HarvestManifest.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return HarvestManifest(incident=incident_id)
    if manifest.incident != incident_id:
        return HarvestManifest(incident=incident_id)
    return manifest


def _entry(name: str, ref: IncidentRef) -> HarvestEntry:
    return HarvestEntry(
        targets=ref.of(name),
        since=ref.since.isoformat() if ref.since else None,
        until=ref.until.isoformat() if ref.until else None,
        report=SourceReport(name=name),
    )


def _still_complete(held: HarvestEntry, entry: HarvestEntry, out_dir: Path) -> bool:
    """An earlier run fetched the same thing completely, and its files are all still there."""
    same = (held.targets, held.since, held.until) == (entry.targets, entry.since, entry.until)
    there = all((out_dir / rel).is_file() for rel in held.report.files)
    return held.complete and same and there


def _files_under(out_dir: Path, name: str) -> list[str]:
    """The data files a stopped source left in its folder (dot files are bookkeeping)."""
    folder = out_dir / name
    if not folder.is_dir():
        return []
    return sorted(
        p.relative_to(out_dir).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _make_folder(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(
            f"--out {out_dir}: a file is in the way (or in its path)",
            hint="give a new or existing folder for the bundle",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"--out {out_dir}: cannot create the folder ({exc.strerror})",
            hint="give a folder you can write to",
        ) from None


def write_incident_yaml(out_dir: Path, ref: IncidentRef, title: str | None) -> None:
    """Create or update incident.yaml with what the harvest knows (id, title, channels, window)."""
    path = out_dir / "incident.yaml"
    meta: dict[str, Any] = {}
    if path.exists() or path.is_symlink():
        # A device, a FIFO, a file that is not UTF-8 YAML: one line, never a traceback.
        loaded = load_yaml(read_text(path, max_bytes=1_000_000, what="incident.yaml"), path)
        if loaded is not None and not isinstance(loaded, dict):
            raise BundleError(
                path,
                "is not a YAML mapping, so the harvest cannot update it",
                hint="fix it (start with `id: INC-123`) or delete it",
            )
        meta = loaded or {}
    meta["id"] = ref.incident_id
    if title:
        meta["title"] = title
    if ref.of("slack"):  # incident.yaml's own field: the channels the Slack reader selects
        meta["slack_channels"] = ref.of("slack")
    if ref.since or ref.until:
        meta["window"] = {
            k: v.isoformat() for k, v in (("start", ref.since), ("end", ref.until)) if v
        }
    write_atomic(path, yaml.safe_dump(meta, sort_keys=False), fsync=False)


# --- retro sources check -------------------------------------------------------------------------

CheckStatus = Literal["ok", "failed", "not configured", "no live mode"]


class SourceCheck(BaseModel):
    """What `retro sources check` found for one source."""

    name: str
    title: str
    status: CheckStatus
    verified: list[str] = Field(default_factory=list, description="What the check verified")
    error: str | None = Field(default=None, description="Why it failed or is not configured")
    asked: bool = Field(default=False, description="Named with --source")

    @property
    def failed(self) -> bool:
        """A configured source that failed; or one named with --source that is not set up."""
        return self.status == "failed" or (self.asked and self.status == "not configured")


def check_sources(only: Sequence[str] = ()) -> list[SourceCheck]:
    """Check every registered source (or those in `only`): credentials, scopes, reachability.

    A source without a live mode is reported as such, not as a failure; a source whose
    credentials (or URL) are not set is "not configured". Unknown names are a ConfigError.
    """
    classes = registry.connector_classes()
    unknown = [name for name in only if name not in classes]
    if unknown:
        raise ConfigError(
            f"unknown source {unknown[0]!r} for --source",
            hint=f"choose one of: {', '.join(sorted(classes))}",
        )
    return [
        check_source(name, cls, asked=bool(only))
        for name, cls in classes.items()
        if not only or name in only
    ]


def check_source(name: str, cls: type[Connector], *, asked: bool = False) -> SourceCheck:
    """One source's check; never raises for the source's own failures."""
    result = SourceCheck(name=name, title=cls.title, status="ok", asked=asked)
    if cls.check is Connector.check:  # file mode only: nothing to verify
        result.status = "no live mode"
        return result
    try:
        config = connector_config(name, cls.title, cls.Config)
        result.verified = cls().check(config)
    except MissingCredential as exc:
        result.status, result.error = "not configured", _one_line(str(exc))
    except RetroError as exc:
        result.status, result.error = "failed", _one_line(str(exc))
    except Exception as exc:  # a connector's bug is that source's failure, not a traceback
        if os.environ.get("RETRO_DEBUG"):
            raise
        result.status = "failed"
        result.error = f"unexpected {type(exc).__name__}: {_one_line(str(exc))[:200]}"
    return result


def checks_exit_code(results: Sequence[SourceCheck]) -> int:
    """0 when every configured source passed; 2 when one failed."""
    return 2 if any(r.failed for r in results) else 0
