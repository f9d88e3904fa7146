"""The layout's rules, checked: dependencies point one way, and plugins register like built-ins."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What a connector may import from retro: the interface, never the pipeline.
CONNECTOR_MAY_IMPORT = {"retro.models", "retro.errors", "retro.connector", "retro.retry"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement names, anywhere in the file (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def test_core_never_imports_the_connectors_package() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted((ROOT / "retro").rglob("*.py"))
        for line, name in _imports(path)
        if name == "connectors" or name.startswith("connectors.")
    ]
    assert not bad, "core imports the connectors package:\n" + "\n".join(bad)


def test_connectors_import_only_retros_interface() -> None:
    bad = []
    for path in sorted((ROOT / "connectors").rglob("*.py")):
        for line, name in _imports(path):
            if name != "retro" and not name.startswith("retro."):
                continue
            if not any(name == ok or name.startswith(ok + ".") for ok in CONNECTOR_MAY_IMPORT):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not bad, "connectors import retro's pipeline:\n" + "\n".join(bad)


def test_the_import_scan_sees_a_violation(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from connectors.slack import read\n", encoding="utf-8")
    assert (2, "connectors.slack") in _imports(module)


def test_every_builtin_is_registered_through_the_entry_point_group() -> None:
    from importlib.metadata import entry_points

    from retro import registry

    names = {ep.name for ep in entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert set(registry.connector_classes()) <= names
    assert {"slack", "pagerduty", "opsgenie", "alertmanager", "grafana", "jira", "generic"} <= names


@pytest.mark.slow
def test_a_third_party_connector_installs_and_drafts_an_incident(tmp_path: Path) -> None:
    """A plugin package installed with pip registers the way the built-ins do."""
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    pip += ["--no-build-isolation", "--no-index", "--target", str(site)]
    subprocess.run([*pip, str(ROOT / "tests" / "plugins")], check=True, cwd=tmp_path)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "incident.yaml").write_text("id: DEMO-1\ntitle: Demo outage\n", encoding="utf-8")
    (bundle / "notes.json").write_text(
        '{"demo_log": [\n'
        ' {"at": "2024-05-01T10:00:00Z", "who": "ops", "said": "checkout errors spiking"},\n'
        ' {"at": "2024-05-01T10:20:00Z", "who": "ops", "said": "rolled back the deploy"},\n'
        ' {"at": "2024-05-01T10:35:00Z", "who": "ops", "said": "all clear, resolved"}\n'
        "]}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    retro = [sys.executable, "-m", "retro.cli"]
    listed = subprocess.run(
        [*retro, "connectors", "list"], env=env, capture_output=True, text=True, check=True
    )
    assert "demo (Demo log)" in listed.stdout
    out = tmp_path / "pm.md"
    run = subprocess.run(
        [*retro, "generate", "--bundle", str(bundle), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    draft = out.read_text(encoding="utf-8")
    assert "| demo |" in draft  # its events are in the Timeline table, by source name
    assert "rolled back the deploy" in draft
    timeline = subprocess.run(
        [*retro, "timeline", "--bundle", str(bundle), "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert timeline.stdout.count('"source": "demo"') == 3
