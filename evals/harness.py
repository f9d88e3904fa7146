"""Run golden incidents through a draft engine and score each draft (see evals/README.md)."""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from evals import scoring as sc
from retro import registry
from retro.draft.engines.base import Engine, EvidenceRow
from retro.draft.evidence import known_names
from retro.draft.lint import check_text
from retro.draft.milestones import compute_metrics
from retro.draft.pipeline import CLAIM_FIELDS, DraftResult, generate
from retro.draft.review import CITATION, Document, parse_document, timeline_of
from retro.errors import ConfigError, RetroError
from retro.models import Milestone, Postmortem

EVALS_DIR = Path(__file__).resolve().parent
CASES_DIR = EVALS_DIR / "cases"
THRESHOLDS = EVALS_DIR / "thresholds.yaml"
RATES = (
    "milestone_accuracy",
    "root_cause_recall",
    "contributing_recall",
    "action_recall",
    "action_precision",
    "citation_resolution",
    "citation_support",
)
Log = Callable[[str], None]


@dataclass
class Expected:
    id: str
    milestones: dict[str, tuple[datetime, float]]
    root_cause_facts: list[str] = field(default_factory=list)
    contributing_factors: list[str] = field(default_factory=list)
    action_items: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)


@dataclass
class Case:
    slug: str
    bundle: Path
    expected: Expected


def _when(value: Any, where: str) -> datetime:
    at = value if isinstance(value, datetime) else None
    if at is None:
        try:
            at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"{where}: {value!r} is not an ISO time", hint="write e.g. 2024-05-01T14:02:00Z"
            ) from None
    if at.tzinfo is None:
        raise ConfigError(f"{where}: {value!r} has no timezone", hint="end it with Z or +00:00")
    return at.astimezone(UTC)


def load_expected(path: Path) -> Expected:
    """Parse one expected.yaml; a malformed file is a ConfigError naming the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path}: not valid YAML ({exc})".splitlines()[0], hint="fix the YAML"
        ) from None
    if not isinstance(raw, dict) or "id" not in raw:
        raise ConfigError(f"{path}: needs a mapping with an `id`", hint="see evals/README.md")
    milestones: dict[str, tuple[datetime, float]] = {}
    for name, spec in (raw.get("milestones") or {}).items():
        if not isinstance(spec, dict) or "at" not in spec:
            raise ConfigError(
                f"{path}: milestones.{name} needs `at`", hint="{at: ..., tolerance_min: 5}"
            )
        milestones[name] = (
            _when(spec["at"], f"{path}: milestones.{name}"),
            float(spec.get("tolerance_min", 5)),
        )

    def strings(key: str) -> list[str]:
        value = raw.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(
                f"{path}: `{key}` must be a list of strings", hint="see evals/README.md"
            )
        return value

    return Expected(
        str(raw["id"]),
        milestones,
        strings("root_cause_facts"),
        strings("contributing_factors"),
        strings("action_items"),
        strings("forbidden"),
    )


def discover(cases_dir: Path, only: tuple[str, ...] = ()) -> list[Case]:
    """Every sub-folder holding an expected.yaml, sorted by name."""
    if not cases_dir.is_dir():
        raise ConfigError(f"no cases folder at {cases_dir}", hint="pass --cases DIR")
    cases = [
        Case(d.name, d, load_expected(d / "expected.yaml"))
        for d in sorted(cases_dir.iterdir())
        if (d / "expected.yaml").is_file() and (not only or d.name in only)
    ]
    if not cases:
        raise ConfigError(
            f"no cases (folders with expected.yaml) under {cases_dir}", hint="pass --cases DIR"
        )
    return cases


# --- scoring one draft -------------------------------------------------------------------------


def _text(claims: list[Any]) -> str:
    return "\n".join(c.text for c in claims)


def _source_text(result: DraftResult, bundle: Path) -> str:
    """All raw text the draft could draw on: event text, attrs, urls, actors, incident.yaml."""
    parts = (
        [(bundle / "incident.yaml").read_text(encoding="utf-8")]
        if (bundle / "incident.yaml").is_file()
        else []
    )
    for e in result.timeline.events:
        parts += [e.text, json.dumps(e.attrs, default=str, ensure_ascii=False), e.url or ""]
        if e.actor:
            parts += [e.actor.name or "", e.actor.email or "", e.actor.id or ""]
    return "\n".join(parts)


def _row_text(row: EvidenceRow) -> str:
    return f"{row.actor} {row.kind.replace('_', ' ')} {row.source} {row.text}"


def _counts(rows: list[EvidenceRow]) -> set[int]:
    """Counts the generator may state: events of each kind, and all events."""
    return set(Counter(r.kind for r in rows).values()) | {len(rows)}


def score_citations(
    pm: Postmortem, result: DraftResult, doc: Document, matcher: sc.Matcher
) -> dict[str, Any]:
    """Citations resolve to Timeline rows (in the Markdown) and the cited rows support each claim."""
    table = {row["id"] for row in timeline_of(doc.sections.get("timeline"))}
    cited = [
        cid
        for key, section in doc.sections.items()
        if key not in ("timeline", "sources")
        for cid in CITATION.findall(section.body)
    ]
    rows = {r.id: r for r in result.data.rows}
    claims = [c for name in CLAIM_FIELDS for c in getattr(pm, name) if c.citations]
    unique = list({c.text: c for c in claims}.values())
    checks = {c.text: _support(c, pm, result, rows, None, None) for c in unique}
    # The model is slow on a small CPU: embed only the claims the words alone do not support.
    threshold = getattr(matcher, "support_threshold", None)
    doubtful = [c for c in unique if not checks[c.text].supported and not checks[c.text].ungrounded]
    if threshold is not None and doubtful:
        for claim, sim in zip(doubtful, _best_similarity(doubtful, rows, matcher), strict=True):
            checks[claim.text] = _support(claim, pm, result, rows, sim, threshold)
    unsupported = [_unsupported(c, checks[c.text]) for c in unique if not checks[c.text].supported]
    resolved = sum(c in table for c in cited)
    return {
        "total": len(cited),
        "resolved": resolved,
        "resolution": resolved / len(cited) if cited else 1.0,
        "claims": len(unique),
        "supported": len(unique) - len(unsupported),
        "support": (len(unique) - len(unsupported)) / len(unique) if unique else 1.0,
        "unsupported": unsupported,
    }


def _unsupported(claim: Any, support: sc.Support) -> dict[str, Any]:
    sim = support.similarity
    return {
        "claim": claim.text,
        "citations": claim.citations,
        "reason": support.reason,
        "overlap": round(support.overlap, 2),
        "similarity": None if sim is None else round(sim, 2),
        "ungrounded": support.ungrounded,
    }


def _support(
    claim: Any,
    pm: Postmortem,
    result: DraftResult,
    rows: dict[str, EvidenceRow],
    similarity: float | None,
    threshold: float | None,
) -> sc.Support:
    cited_rows = [rows[c] for c in claim.citations if c in rows]
    evidence_ids = {i for m in pm.milestones.values() for i in m.evidence}
    figures = sc.Figures.build(
        pm.milestones, pm.metrics, [r.at for r in cited_rows], _counts(result.data.rows)
    )
    return sc.claim_support(
        claim.text,
        [_row_text(r) for r in cited_rows],
        figures=figures,
        from_milestones=bool(cited_rows) and all(r.id in evidence_ids for r in cited_rows),
        similarity=similarity,
        embed_threshold=threshold,
    )


def _best_similarity(
    claims: list[Any], rows: dict[str, EvidenceRow], matcher: sc.Matcher
) -> list[float]:
    """Best cosine between each claim and one of its cited rows, all embedded in one batch."""
    row_ids = list(dict.fromkeys(c for claim in claims for c in claim.citations if c in rows))
    sims = matcher.similarity([c.text for c in claims], [rows[i].text for i in row_ids])
    index = {rid: j for j, rid in enumerate(row_ids)}
    return [
        max((sims[k][index[c]] for c in claim.citations if c in index), default=0.0)
        for k, claim in enumerate(claims)
    ]


TOOL_NAMES = frozenset([*registry.source_info(), "system", "prometheus", "github", "kubernetes"])


def people_names(result: DraftResult) -> list[str]:
    """Known people's names, minus tools a connector left unmarked as bots ("Alertmanager")."""
    return [n for n in known_names(result.timeline.people) if n.casefold() not in TOOL_NAMES]


def _as_word(needle: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", text, re.IGNORECASE) is not None


def score_blameless(markdown: str, result: DraftResult, forbidden: list[str]) -> dict[str, Any]:
    """Forbidden strings, lint blame/counterfactual findings, and known people's names."""
    low = markdown.casefold()
    hits = [f for f in forbidden if f.casefold() in low]
    findings = [
        f for f in check_text(markdown, names=people_names(result)) if f.severity == "error"
    ]
    blame = [
        f"{f.line}: {f.message}"
        for f in findings
        if f.message.startswith(("blame wording", "counterfactual wording"))
    ]
    names = [
        f"{f.line}: {f.message}"
        for f in findings
        if f.message.startswith(("name “", "personal email", "person handle"))
    ]
    return {
        "violations": len(hits) + len(blame) + len(names),
        "forbidden": hits,
        # counted all the same; listed so a reader can tell "Wen" inside "went" from a leak
        "forbidden_only_inside_words": [f for f in hits if not _as_word(f, markdown)],
        "blame": blame,
        "names": names,
    }


def score_entities(pm: Postmortem, result: DraftResult, bundle: Path) -> dict[str, Any]:
    """Hosts, services, numbers and names in the narrative that no source text holds."""
    source = _source_text(result, bundle)
    numbers = sc.source_numbers(source)
    figures = sc.Figures.build(
        pm.milestones, pm.metrics, [r.at for r in result.data.rows], _counts(result.data.rows)
    )
    facts = [pm.title, *(c.text for n in CLAIM_FIELDS for c in getattr(pm, n)), *pm.open_questions]
    targets = [t for a in pm.action_items for t in (a.title, a.end_state)]
    seen: dict[tuple[str, str], None] = {}
    for texts, check in ((facts, True), (targets, False)):
        for text in dict.fromkeys(texts):
            for ent in sc.entities(text, figures, source, numbers, check_figures=check):
                seen[(ent.kind, ent.text)] = None
    items = [{"kind": k, "text": t} for k, t in seen]
    return {"count": len(items), "items": items}


def draft_words(doc: Document) -> int:
    """Words a reader reads: the Markdown body minus the generated Timeline and Sources tables."""
    skip = {
        i
        for key in ("timeline", "sources")
        if (s := doc.sections.get(key))
        for i in range(s.start, s.end)
    }
    return sc.word_count("\n".join(line for i, line in enumerate(doc.lines) if i not in skip))


def expected_metrics(expected: Expected) -> Any:
    milestones = {n: Milestone(name=n, at=at) for n, (at, _) in expected.milestones.items()}  # type: ignore[arg-type]
    return compute_metrics(milestones)


def score_draft(
    case: Case, result: DraftResult, seconds: float, matcher: sc.Matcher
) -> dict[str, Any]:
    """Every metric for one case's draft."""
    pm, exp, md = result.postmortem, case.expected, result.markdown
    doc = parse_document(md)
    accuracy, ms_rows = sc.score_milestones(exp.milestones, pm.milestones)
    rc = sc.fact_recall(
        exp.root_cause_facts, "\n".join(map(_text, (pm.root_cause, pm.trigger, pm.summary)))
    )
    cf = sc.fact_recall(
        exp.contributing_factors,
        "\n".join(map(_text, (pm.contributing_factors, pm.root_cause, pm.went_poorly))),
    )
    actions = sc.match_actions(exp.action_items, [a.title for a in pm.action_items], matcher)
    return {
        "slug": case.slug,
        "id": exp.id,
        "error": None,
        "milestones": {
            "accuracy": accuracy,
            "rows": [
                {
                    **asdict(r),
                    "expected": r.expected.isoformat(),
                    "inferred": r.inferred.isoformat() if r.inferred else None,
                }
                for r in ms_rows
            ],
        },
        "ttx_error_min": sc.metric_errors(expected_metrics(exp), pm.metrics),
        "root_cause": asdict(rc),
        "contributing": asdict(cf),
        "actions": {
            "recall": actions.recall,
            "precision": actions.precision,
            "pairs": [{"expected": e, "drafted": d, "score": s} for e, d, s in actions.pairs],
            "unmatched_expected": actions.unmatched_expected,
            "unmatched_drafted": actions.unmatched_drafted,
        },
        "citations": score_citations(pm, result, doc, matcher),
        "blameless": score_blameless(md, result, exp.forbidden),
        "unsupported_entities": score_entities(pm, result, case.bundle),
        "words": draft_words(doc),
        "seconds": round(seconds, 2),
    }


def run_case(case: Case, engine: Engine, matcher: sc.Matcher) -> dict[str, Any]:
    """Draft one case and score it; a failure is recorded, never raised."""
    started = time.perf_counter()
    try:
        result = generate(bundle=case.bundle, engine=engine)
    except (RetroError, OSError, ValueError) as exc:
        return {
            "slug": case.slug,
            "id": case.expected.id,
            "error": f"{type(exc).__name__}: {exc}",
            "seconds": round(time.perf_counter() - started, 2),
        }
    return score_draft(case, result, time.perf_counter() - started, matcher)


# --- aggregation and the gate ------------------------------------------------------------------


def case_rates(r: dict[str, Any]) -> dict[str, float]:
    """The per-case rates that are averaged; a failed case scores 0 on each."""
    if r.get("error"):
        return dict.fromkeys(RATES, 0.0)
    return {
        "milestone_accuracy": r["milestones"]["accuracy"],
        "root_cause_recall": r["root_cause"]["value"],
        "contributing_recall": r["contributing"]["value"],
        "action_recall": r["actions"]["recall"],
        "action_precision": r["actions"]["precision"],
        "citation_resolution": r["citations"]["resolution"],
        "citation_support": r["citations"]["support"],
    }


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Means of the rates over cases, totals of the counts, mean time-to-X errors."""
    ok = [r for r in results if not r.get("error")]
    n = max(len(results), 1)
    out: dict[str, Any] = {"cases": len(results), "errors": len(results) - len(ok)}
    for key in RATES:
        out[key] = round(sum(case_rates(r)[key] for r in results) / n, 4)
    errors = {
        k: [r["ttx_error_min"][k] for r in ok if r["ttx_error_min"][k] is not None]
        for k in sc.METRIC_KEYS
    }
    for key, values in errors.items():
        out[f"{key.removesuffix('_s')}_error_min"] = (
            round(sum(values) / len(values), 2) if values else None
        )
    flat = [v for values in errors.values() for v in values]
    out["ttx_mae_min"] = round(sum(flat) / len(flat), 2) if flat else None
    out["blameless_violations"] = sum(r["blameless"]["violations"] for r in ok)
    out["unsupported_entities"] = sum(r["unsupported_entities"]["count"] for r in ok)
    out["words_mean"] = round(sum(r["words"] for r in ok) / len(ok)) if ok else 0
    out["seconds_total"] = round(sum(r["seconds"] for r in results), 2)
    out["seconds_max"] = round(max((r["seconds"] for r in results), default=0.0), 2)
    return out


def load_thresholds(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read thresholds {path}: {exc}".splitlines()[0], hint="see evals/README.md"
        ) from None
    return raw


def gate(agg: dict[str, Any], thresholds: dict[str, Any], matcher_name: str) -> list[str]:
    """Failures: aggregates below `min` or above `max`. An unknown key is a ConfigError."""
    limits = {"min": dict(thresholds.get("min") or {}), "max": dict(thresholds.get("max") or {})}
    if not matcher_name.startswith("embedding"):
        # Token overlap scores action items differently; it has its own floor.
        limits["min"].update((thresholds.get("token_matcher") or {}).get("min") or {})
    failures: list[str] = []
    for bound, table in limits.items():
        for key, limit in table.items():
            if key not in agg:
                raise ConfigError(
                    f"thresholds: unknown metric {key!r}", hint=f"use one of: {', '.join(agg)}"
                )
            value = agg[key]
            if value is None:
                failures.append(f"{key} could not be measured (limit {bound} {limit})")
            elif (bound == "min" and value < limit) or (bound == "max" and value > limit):
                word = "below" if bound == "min" else "above"
                failures.append(f"{key} = {value} is {word} the {bound} of {limit}")
    return failures


# --- engines and the whole run -----------------------------------------------------------------


def openai_configured() -> bool:
    return bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


def run_engine(
    name: str,
    engine: Engine | None,
    cases: list[Case],
    matcher: sc.Matcher,
    log: Log,
    setup_error: str | None = None,
) -> dict[str, Any]:
    """All cases through one engine; a setup error marks every case failed."""
    results: list[dict[str, Any]] = []
    for i, case in enumerate(cases, start=1):
        if engine is None:
            results.append(
                {"slug": case.slug, "id": case.expected.id, "error": setup_error, "seconds": 0.0}
            )
            continue
        result = run_case(case, engine, matcher)
        results.append(result)
        state = f"ERROR {result['error']}" if result.get("error") else f"{result['seconds']:.2f}s"
        log(f"evals: [{i}/{len(cases)}] {name}: {case.slug} {state}")
    return {
        "engine": name,
        "model": getattr(engine, "model", None),
        "aggregate": aggregate(results),
        "cases": results,
    }


def run(
    cases: list[Case],
    engines: dict[str, tuple[Engine | None, str | None]],
    matcher: sc.Matcher,
    matcher_note: str,
    log: Log,
) -> dict[str, Any]:
    """The report: per engine, every case's scores and the aggregate."""
    started = time.perf_counter()
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "matcher": matcher.name,
        "matcher_note": matcher_note,
        "thresholds_used": {
            "action_match": matcher.action_threshold,
            "lexical_support": sc.LEXICAL_SUPPORT_THRESHOLD,
            "embedding_support": getattr(matcher, "support_threshold", None),
        },
        "engines": {
            name: run_engine(name, engine, cases, matcher, log, err)
            for name, (engine, err) in engines.items()
        },
    }
    report["seconds_total"] = round(time.perf_counter() - started, 2)
    return report


def engines_for(
    primary: str, compare: bool | None, model: str | None, base_url: str | None
) -> dict[str, tuple[Any, str | None]]:
    """Engine name -> (engine or None, setup error). The openai engine joins when configured."""
    from retro.draft.engines import make_engine
    from retro.errors import RetroError

    names = [primary]
    if primary == "offline" and (compare or (compare is None and openai_configured())):
        names.append("openai")
    out: dict[str, tuple[Any, str | None]] = {}
    for name in names:
        try:
            out[name] = (make_engine(name, model=model, base_url=base_url), None)
        except RetroError as exc:
            if name == primary:
                raise
            out[name] = (None, f"{type(exc).__name__}: {exc}")
    return out


def verdicts_for(
    report: dict[str, Any], thresholds: Path | None, matcher_name: str
) -> dict[str, list[str]]:
    """Gate failures per gated engine: only the offline engine is gated."""
    if "offline" not in report["engines"]:
        return {}
    limits = load_thresholds(thresholds or THRESHOLDS)
    return {"offline": gate(report["engines"]["offline"]["aggregate"], limits, matcher_name)}


def evaluate(
    *,
    engine: str = "offline",
    cases_dir: Path | None = None,
    only: tuple[str, ...] = (),
    gate_it: bool = False,
    out: Path | None = None,
    thresholds: Path | None = None,
    matcher_kind: str = "auto",
    compare: bool | None = None,
    model: str | None = None,
    base_url: str | None = None,
    log: Any = lambda _m: None,
) -> tuple[dict[str, Any], dict[str, list[str]] | None, Path, Path]:
    """The whole eval run behind `retro eval`: (report, gate verdicts, report.md, report.json)."""
    from evals import report as rep
    from evals.scoring import load_matcher

    cases = discover(cases_dir or CASES_DIR, only)
    engines = engines_for(engine, compare, model, base_url)
    matcher, note = load_matcher(matcher_kind)
    log(f"evals: matcher: {matcher.name} ({note})")
    report = run(cases, engines, matcher, note, log)
    verdicts = verdicts_for(report, thresholds, matcher.name) if gate_it else None
    md, js = rep.write_reports(report, out or EVALS_DIR, verdicts)
    return report, verdicts, md, js
