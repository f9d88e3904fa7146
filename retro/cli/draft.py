"""`retro generate`, `retro show`, `retro check` and `retro demo`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from retro.cli._ui import info, progress_bar
from retro.draft.engines import ENGINES, make_engine
from retro.errors import ConfigError
from retro.models import Postmortem


def sample_bundle() -> Path:
    """The bundled sample incident, from the installed package."""
    from importlib.resources import files

    path = Path(str(files("retro") / "sample" / "bundle"))
    if not path.is_dir():
        raise ConfigError(
            "the sample bundle is missing from this installation", hint="reinstall retro"
        )
    return path


def _similar_finder() -> Any:
    """A function that fills "Similar past incidents" from the index; [] when there is none."""
    from retro.index.similarity import similar_from_index

    return similar_from_index


def summary_lines(pm: Postmortem, path: Path | None) -> list[str]:
    from retro.draft.milestones import human_duration
    from retro.draft.render import METRIC_LABELS, MILESTONE_LABELS

    lines = [f"{path}" if path else "", f"{pm.incident_id}: {pm.title}", ""]
    for name, m in pm.milestones.items():
        when = f"{m.at:%Y-%m-%d %H:%M} UTC" if m.at else "unknown"
        lines.append(
            f"  {MILESTONE_LABELS[name]:<21} {when}  ({m.rule}, confidence {m.confidence:.2f})"
        )
    lines.append("")
    for key, label in METRIC_LABELS.items():
        lines.append(f"  {label:<30} {human_duration(getattr(pm.metrics, key))}")
    lines += ["", f"  {len(pm.action_items)} action items, {len(pm.open_questions)} open questions"]
    return [line for line in lines if line is not None]


def _summary_json(pm: Postmortem, path: Path | None, result: Any) -> dict[str, Any]:
    from retro.draft.review import show_json

    data = show_json(pm)
    data["path"] = str(path) if path else None
    data["dropped_claims"] = result.dropped_claims
    data["kept_sections"] = result.kept_sections
    return data


@click.command()
@click.option(
    "--bundle",
    "bundle_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Incident bundle folder.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Draft to write [default: postmortem-<id>.md]; `-` for standard output. Only a "
    "regular file (or a new path) is read and replaced.",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="offline",
    show_default=True,
    envvar="RETRO_ENGINE",
)
@click.option(
    "--model", envvar="RETRO_MODEL", help="LLM model for --engine openai (e.g. gpt-4o-mini)."
)
@click.option(
    "--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible endpoint (Azure, Ollama, vLLM)."
)
@click.option(
    "--llm-timeout",
    type=float,
    help="Seconds to wait for each model answer [env RETRO_LLM_TIMEOUT, retro.toml "
    "llm_timeout; default 600].",
)
@click.option("--names", is_flag=True, help="Show people's handles instead of roles.")
@click.option(
    "--lenient", is_flag=True, help="Skip and count malformed records instead of stopping."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def generate(
    bundle_dir: Path,
    out: Path | None,
    engine: str,
    model: str | None,
    base_url: str | None,
    llm_timeout: float | None,
    names: bool,
    lenient: bool,
    as_json: bool,
) -> None:
    """Write a blameless postmortem draft from an incident bundle.

    Re-running with --out pointing at an existing draft updates what retro wrote and keeps
    every section a person edited.

    \b
    Examples:
      retro generate --bundle bundles/INC-42 --out postmortems/INC-42.md
      retro generate --bundle bundles/INC-42 --engine openai --model gpt-4o-mini
      retro generate --bundle b/ --engine openai --base-url http://localhost:11434/v1 --model llama3.1
    """
    from retro.draft.pipeline import generate as run
    from retro.files import output_target

    if out is None:
        out = Path(f"postmortem-{_incident_id(bundle_dir)}.md")
    to_stdout = output_target(out).is_stdout  # refuses a device, FIFO or folder before any work
    chosen = make_engine(engine, model=model, base_url=base_url, timeout=llm_timeout)
    with progress_bar() as progress:
        result = run(
            bundle=bundle_dir,
            engine=chosen,
            out=out,
            names=names,
            lenient=lenient,
            similar=_similar_finder(),
            progress=progress,
        )
    _report(result, None if to_stdout else out, chosen, as_json, quiet=to_stdout)


def _incident_id(bundle_dir: Path) -> str:
    from retro.timeline.bundle import read_incident

    if not bundle_dir.is_dir():
        from retro.errors import BundleError

        what = "is not a folder" if bundle_dir.exists() else "does not exist"
        raise BundleError(bundle_dir, what, hint="pass the bundle folder with --bundle")
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in read_incident(bundle_dir).id)


def _report(
    result: Any, out: Path | None, engine: Any, as_json: bool, *, quiet: bool = False
) -> None:
    """The summary on stdout; on stderr when the draft itself went to stdout (`--out -`)."""
    pm = result.postmortem
    if as_json:
        data = _summary_json(pm, out, result)
        data["usage"] = engine.usage()
        click.echo(json.dumps(data, indent=2, default=str), err=quiet)
        return
    click.echo("\n".join(summary_lines(pm, out)), err=quiet)
    if result.kept_sections:
        info(f"kept human-edited sections: {', '.join(result.kept_sections)}")
    if result.changed_citations:
        info(
            f"{len(result.changed_citations)} citations in kept sections name events that "
            f"changed since: {', '.join(result.changed_citations[:5])}; `retro check --bundle` "
            "shows where"
        )
    if result.dropped_claims:
        info(f"dropped {result.dropped_claims} claims whose citations did not check out")
    usage = engine.usage()
    if usage:
        info("LLM usage: " + ", ".join(f"{k} {v}" for k, v in usage.items()))


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the parsed draft as one JSON object.")
def show(file: Path, as_json: bool) -> None:
    """Parse a postmortem (edited or not) and print it as a summary or JSON.

    Milestone times edited in the Markdown override the inferred ones; metrics follow.

    \b
    Example:
      retro show postmortems/INC-42.md --json | jq .metrics
    """
    from retro.draft.review import read_postmortem, show_json

    pm = read_postmortem(file)
    if as_json:
        click.echo(json.dumps(show_json(pm), indent=2, default=str))
    else:
        click.echo("\n".join(summary_lines(pm, file)))


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--bundle",
    "bundle_dir",
    type=click.Path(path_type=Path),
    help="The incident's bundle: also flag every real name of its people.",
)
@click.option("--json", "as_json", is_flag=True, help="Print findings as JSON.")
def check(file: Path, bundle_dir: Path | None, as_json: bool) -> None:
    """Lint a draft: names, blame, missing sections, dangling citations, action items.

    With --bundle, a citation whose event is gone from the bundle or changed since the draft
    cited it is an error too.

    Prints `file:line: severity: message` and exits 1 when there are errors.

    \b
    Example:
      retro check postmortems/INC-42.md --bundle bundles/INC-42
    """
    from retro.draft.lint import check_text
    from retro.draft.review import read_draft

    text = read_draft(file)
    names: list[str] = []
    events: dict[str, str] | None = None
    if bundle_dir is not None:
        from retro.draft.evidence import known_names
        from retro.draft.render import evidence_hash
        from retro.timeline.read import read_timeline

        timeline = read_timeline(bundle_dir, lenient=True)
        names = known_names(timeline.people)
        events = {e.id: evidence_hash(e) for e in timeline.events}
    findings = check_text(text, str(file), names=names, events=events)
    if as_json:
        click.echo(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        for finding in findings:
            click.echo(finding.format(str(file)))
        errors = sum(f.severity == "error" for f in findings)
        info(f"{errors} errors, {len(findings) - errors} warnings")
    if any(f.severity == "error" for f in findings):
        sys.exit(1)


@click.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("retro-demo-postmortem.md"),
    show_default=True,
    help="Draft to write; `-` for standard output.",
)
def demo(out: Path) -> None:
    """Draft the bundled sample incident, offline, in seconds.

    \b
    Example:
      retro demo --out /tmp/demo.md && retro check /tmp/demo.md
    """
    from retro.draft.engines.offline import OfflineEngine
    from retro.draft.pipeline import generate as run
    from retro.files import output_target

    to_stdout = output_target(out).is_stdout
    engine = OfflineEngine()
    with progress_bar() as progress:
        result = run(bundle=sample_bundle(), engine=engine, out=out, progress=progress)
    _report(result, None if to_stdout else out, engine, False, quiet=to_stdout)
    if not to_stdout:
        info(f"Next: open {out}, then `retro check {out}`")
