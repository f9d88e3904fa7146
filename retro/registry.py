"""The connector registry: every connector, built-in or third-party, comes from one entry-point
group, `retro.connectors` (the built-ins are listed in retro's own pyproject.toml).

Connectors are asked to claim a file in `order` (then name): specific shapes first, the
generic JSONL/CSV reader last. The same order breaks ties between events at the same time.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from retro.connector import Connector
from retro.errors import ConfigError
from retro.models import SourceInfo

ENTRY_POINT_GROUP = "retro.connectors"


def _load(name: str, spec: str) -> type[Connector]:
    try:
        cls = entry_points(group=ENTRY_POINT_GROUP)[name].load()
    except Exception as exc:  # a broken plugin must say which one it is
        raise ConfigError(
            f"connector plugin {name} ({spec}) failed to load: {type(exc).__name__}: {exc}",
            hint="reinstall or uninstall the package that provides it",
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError(f"connector plugin {spec} is not a retro Connector subclass")
    if cls.name != name:
        raise ConfigError(
            f"connector plugin {spec} is registered as {name!r} but names itself {cls.name!r}",
            hint="make the entry point's name and the class's `name` the same",
        )
    return cls


@cache
def connector_classes() -> dict[str, type[Connector]]:
    """Every registered connector by name, in claim order."""
    found = [_load(ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP)]
    if not found:
        raise ConfigError(
            "no connectors are registered",
            hint="install retro (pip install -e .) so its entry points exist",
        )
    found.sort(key=lambda cls: (cls.order, cls.name))
    return {cls.name: cls for cls in found}


def connectors() -> list[Connector]:
    """Fresh instances of every registered connector."""
    return [cls() for cls in connector_classes().values()]


def get(name: str) -> Connector:
    classes = connector_classes()
    if name not in classes:
        raise ConfigError(
            f"unknown source {name!r}", hint=f"choose one of: {', '.join(sorted(classes))}"
        )
    return classes[name]()


@cache
def source_info() -> dict[str, SourceInfo]:
    """What each registered source's events mean (roles, trust, title), by source name."""
    return {name: cls.info() for name, cls in connector_classes().items()}


def describe() -> list[dict[str, Any]]:
    """Each connector's name, title, roles, what `--from NAME=…` takes, and its settings."""
    from retro.config import field_env

    rows: list[dict[str, Any]] = []
    for name, cls in connector_classes().items():
        settings = [
            {
                "name": field,
                "env": field_env(cls.Config, field),
                "description": info.description or "",
                "required": info.is_required(),
            }
            for field, info in cls.Config.model_fields.items()
        ]
        rows.append(
            {
                "name": name,
                "title": cls.title,
                "roles": sorted(cls.roles),
                "harvest": cls.harvest_help,
                "low_trust": cls.low_trust,
                "settings": settings,
            }
        )
    return rows
