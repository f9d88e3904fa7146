"""`retro harvest`: fetch an incident's data from live APIs into a bundle folder.

Each source is harvested on its own through its connector's live mode. One source's failure is
recorded and the others still run; the caller decides what a failure means for its exit code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from retro import registry
from retro.config import connector_config
from retro.connector import IncidentRef
from retro.errors import ConfigError, RetroError
from retro.models import Progress, SourceReport, no_progress


@dataclass
class Outcome:
    """What one source's harvest did: its report, or the error that stopped it."""

    name: str
    report: SourceReport | None = None
    error: str | None = None


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
    progress: Progress = no_progress,
    log: Callable[[str], None] = lambda _m: None,
) -> list[Outcome]:
    """Write incident.yaml and every wanted source's files under out_dir."""
    names = wanted_sources(ref)
    if not names:
        raise ConfigError(
            "nothing to harvest",
            hint="pass --from SOURCE=WHAT (e.g. --from slack=inc-42), or --slack-channel, "
            "--pagerduty, --opsgenie-alert, --jira or --alertmanager",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_incident_yaml(out_dir, ref, title)
    outcomes: list[Outcome] = []
    for name in names:
        connector = registry.get(name)
        try:
            config = connector_config(name, connector.title, connector.Config)
            report = connector.harvest(ref, out_dir, config, progress)
        except RetroError as exc:
            outcomes.append(Outcome(name, error=str(exc)))
            log(f"  {name}: failed: {exc}")
            continue
        outcomes.append(Outcome(name, report=report))
        log(f"  {name}: {report.records} records, {len(report.files)} files")
    return outcomes


def write_incident_yaml(out_dir: Path, ref: IncidentRef, title: str | None) -> None:
    """Create or update incident.yaml with what the harvest knows (id, title, channels, window)."""
    path = out_dir / "incident.yaml"
    meta: dict[str, Any] = {}
    if path.exists():
        meta = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    meta["id"] = ref.incident_id
    if title:
        meta["title"] = title
    if ref.of("slack"):  # incident.yaml's own field: the channels the Slack reader selects
        meta["slack_channels"] = ref.of("slack")
    if ref.since or ref.until:
        meta["window"] = {
            k: v.isoformat() for k, v in (("start", ref.since), ("end", ref.until)) if v
        }
    path.write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
