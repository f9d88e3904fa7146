"""The connector registry: built-ins and third-party plugins share one entry-point group."""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from retro.connector import Connector
from retro.errors import ConfigError

ENTRY_POINT_GROUP = "retro.connectors"

# Built-ins, in the order they are asked to claim a file. Listed here as well as in
# pyproject.toml's entry points so a source checkout that is not installed still works.
BUILTINS: dict[str, str] = {
    "slack": "connectors.slack:SlackConnector",
    "pagerduty": "connectors.pagerduty:PagerDutyConnector",
    "opsgenie": "connectors.opsgenie:OpsgenieConnector",
    "alertmanager": "connectors.alertmanager:AlertmanagerConnector",
    "grafana": "connectors.grafana:GrafanaConnector",
    "jira": "connectors.jira:JiraConnector",
    "generic": "connectors.generic:GenericConnector",
}


def _load(spec: str) -> type[Connector]:
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError(f"connector plugin {spec} is not a retro Connector subclass")
    return cls


@cache
def connector_classes() -> dict[str, type[Connector]]:
    """Every connector by name: built-ins first, then plugins from the entry-point group."""
    found: dict[str, type[Connector]] = {name: _load(spec) for name, spec in BUILTINS.items()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue
        found[ep.name] = _load(ep.value)
    return found


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
