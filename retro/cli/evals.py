"""`retro eval` (also `python -m evals`): score drafts of the golden incidents, and gate on them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from retro.cli._ui import info
from retro.errors import ConfigError, RetroError


def _harness() -> Any:
    """The evals package lives in the source checkout, next to its golden cases."""
    try:
        from evals import harness
    except ImportError as exc:
        raise ConfigError(
            f"the evals package is not importable ({exc})",
            hint="run `retro eval` from a source checkout of retro (evals/ sits next to retro/)",
        ) from None
    return harness


@click.command("eval")
@click.option(
    "--engine",
    type=click.Choice(["offline", "openai"]),
    default="offline",
    show_default=True,
    help="Engine to score (and, for offline, to gate).",
)
@click.option(
    "--cases",
    "cases_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of golden cases (default: evals/cases).",
)
@click.option("--case", "only", multiple=True, help="Run only this case (repeatable).")
@click.option("--gate", is_flag=True, help="Exit 1 when the offline engine misses a threshold.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where report.md and report.json go (default: evals/).",
)
@click.option(
    "--thresholds",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Gate thresholds (default: evals/thresholds.yaml).",
)
@click.option(
    "--matcher",
    type=click.Choice(["auto", "embedding", "token"]),
    default="auto",
    show_default=True,
    help="Similarity for action items and citation support; auto falls back to tokens loudly.",
)
@click.option(
    "--compare/--no-compare",
    default=None,
    help="Also score the openai engine (default: when OPENAI_API_KEY or OPENAI_BASE_URL is set).",
)
@click.option("--model", envvar="RETRO_MODEL", help="LLM model for the openai engine.")
@click.option("--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible endpoint.")
def eval_command(
    engine: str,
    cases_dir: Path | None,
    only: tuple[str, ...],
    gate: bool,
    as_json: bool,
    out: Path | None,
    thresholds: Path | None,
    matcher: str,
    compare: bool | None,
    model: str | None,
    base_url: str | None,
) -> None:
    """Draft every golden incident, score the drafts, write evals/report.md and report.json.

    \b
    Examples:
      retro eval                          # offline engine, table on stdout
      retro eval --gate                   # exit 1 if a metric misses evals/thresholds.yaml
      python -m evals --case bad-deploy-rollback --json
      OPENAI_API_KEY=... retro eval       # offline and openai side by side (openai is not gated)
    """
    try:
        code = _run(
            engine,
            cases_dir,
            only,
            gate,
            as_json,
            out,
            thresholds,
            matcher,
            compare,
            model,
            base_url,
        )
    except RetroError as exc:
        if os.environ.get("RETRO_DEBUG"):
            raise
        click.echo(f"retro: error: {exc}", err=True)
        sys.exit(2)
    sys.exit(code)


def _run(
    engine: str,
    cases_dir: Path | None,
    only: tuple[str, ...],
    gate: bool,
    as_json: bool,
    out: Path | None,
    thresholds: Path | None,
    matcher_kind: str,
    compare: bool | None,
    model: str | None,
    base_url: str | None,
) -> int:
    from evals import report as rep

    report, verdicts, md, js = _harness().evaluate(
        engine=engine,
        cases_dir=cases_dir,
        only=only,
        gate_it=gate,
        out=out,
        thresholds=thresholds,
        matcher_kind=matcher_kind,
        compare=compare,
        model=model,
        base_url=base_url,
        log=info,
    )
    if as_json:
        click.echo(
            json.dumps({**report, "gate": verdicts}, indent=2, ensure_ascii=False, default=str)
        )
    else:
        for name, run in report["engines"].items():
            click.echo(f"\nengine: {name}" + (f" ({run['model']})" if run.get("model") else ""))
            click.echo(rep.text_table(run))
    info(f"evals: wrote {md} and {js}")
    return _exit_code(verdicts)


def _exit_code(verdicts: dict[str, list[str]] | None) -> int:
    if verdicts is None:
        return 0
    if "offline" not in verdicts:
        info("evals: --gate applies to the offline engine only; openai is reported, not gated")
        return 0
    for failure in verdicts["offline"]:
        info(f"evals: GATE FAIL: {failure}")
    if not verdicts["offline"]:
        info("evals: gate passed (evals/thresholds.yaml)")
    return 1 if verdicts["offline"] else 0
