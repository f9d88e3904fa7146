"""The eval report as a terminal table, Markdown (evals/report.md) and JSON (evals/report.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COLUMNS = (
    ("case", "Case"),
    ("ms", "Milestones"),
    ("ttx", "TTx err (min)"),
    ("rc", "Root cause"),
    ("cf", "Contrib."),
    ("ar", "Actions R"),
    ("ap", "Actions P"),
    ("cr", "Cites resolve"),
    ("cs", "Cites support"),
    ("bv", "Blameless viol."),
    ("ue", "Unsupported"),
    ("words", "Words"),
    ("sec", "Seconds"),
)
AGG_LABELS = {
    "milestone_accuracy": "Milestone accuracy",
    "ttx_mae_min": "Time-to-X mean abs. error (min)",
    "time_to_detect_error_min": "  time to detect error (min)",
    "time_to_acknowledge_error_min": "  time to acknowledge error (min)",
    "time_to_mitigate_error_min": "  time to mitigate error (min)",
    "time_to_resolve_error_min": "  time to resolve error (min)",
    "root_cause_recall": "Root-cause fact recall",
    "contributing_recall": "Contributing-factor recall",
    "action_recall": "Action-item recall",
    "action_precision": "Action-item precision",
    "citation_resolution": "Citations that resolve",
    "citation_support": "Cited claims supported",
    "blameless_violations": "Blameless violations (total)",
    "unsupported_entities": "Unsupported entities (total)",
    "words_mean": "Draft length (words, mean)",
    "seconds_total": "Run time (s, total)",
    "errors": "Cases that failed to run",
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def case_row(r: dict[str, Any]) -> dict[str, str]:
    if r.get("error"):
        return {
            "case": r["slug"],
            "ms": "ERROR",
            **{k: "-" for k, _ in COLUMNS[2:-1]},
            "sec": _num(r["seconds"]),
        }
    ttx = [v for v in r["ttx_error_min"].values() if v is not None]
    c = r["citations"]
    return {
        "case": r["slug"],
        "ms": _pct(r["milestones"]["accuracy"]),
        "ttx": _num(round(sum(ttx) / len(ttx), 1)) if ttx else "-",
        "rc": _pct(r["root_cause"]["value"]),
        "cf": _pct(r["contributing"]["value"]),
        "ar": _pct(r["actions"]["recall"]),
        "ap": _pct(r["actions"]["precision"]),
        "cr": f"{c['resolved']}/{c['total']}",
        "cs": _pct(c["support"]),
        "bv": str(r["blameless"]["violations"]),
        "ue": str(r["unsupported_entities"]["count"]),
        "words": str(r["words"]),
        "sec": _num(r["seconds"]),
    }


def agg_row(agg: dict[str, Any]) -> dict[str, str]:
    return {
        "case": "**all (mean / total)**",
        "ms": _pct(agg["milestone_accuracy"]),
        "ttx": _num(agg["ttx_mae_min"]),
        "rc": _pct(agg["root_cause_recall"]),
        "cf": _pct(agg["contributing_recall"]),
        "ar": _pct(agg["action_recall"]),
        "ap": _pct(agg["action_precision"]),
        "cr": _pct(agg["citation_resolution"]),
        "cs": _pct(agg["citation_support"]),
        "bv": str(agg["blameless_violations"]),
        "ue": str(agg["unsupported_entities"]),
        "words": str(agg["words_mean"]),
        "sec": _num(agg["seconds_total"]),
    }


def markdown_table(run: dict[str, Any]) -> str:
    rows = [case_row(r) for r in run["cases"]] + [agg_row(run["aggregate"])]
    head = "| " + " | ".join(label for _, label in COLUMNS) + " |"
    sep = "|" + "|".join("---" if k == "case" else "--:" for k, _ in COLUMNS) + "|"
    body = ["| " + " | ".join(row[k] for k, _ in COLUMNS) + " |" for row in rows]
    return "\n".join([head, sep, *body])


def text_table(run: dict[str, Any]) -> str:
    """The per-case table for a terminal."""
    rows = [case_row(r) for r in run["cases"]] + [{**agg_row(run["aggregate"]), "case": "ALL"}]
    labels = {k: label for k, label in COLUMNS}
    short = {
        **labels,
        "ttx": "TTx",
        "cr": "Cite res",
        "cs": "Cite sup",
        "bv": "Blame",
        "ue": "Unsup",
        "sec": "Sec",
    }
    widths = {k: max(len(short[k]), *(len(r[k]) for r in rows)) for k, _ in COLUMNS}
    lines = ["  ".join(short[k].ljust(widths[k]) for k, _ in COLUMNS)]
    lines += ["  ".join(r[k].ljust(widths[k]) for k, _ in COLUMNS) for r in rows]
    return "\n".join(lines)


def comparison_table(report: dict[str, Any]) -> str:
    """Aggregates of every engine side by side."""
    runs = list(report["engines"].values())
    head = (
        "| Metric | "
        + " | ".join(r["engine"] + (f" ({r['model']})" if r.get("model") else "") for r in runs)
        + " |"
    )
    lines = [head, "|---" + "|--:" * len(runs) + "|"]
    for key, label in AGG_LABELS.items():
        cells = []
        for r in runs:
            value = r["aggregate"].get(key)
            cells.append(_pct(value) if key in RATE_KEYS else _num(value))
        lines.append(f"| {label.strip()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


RATE_KEYS = {
    "milestone_accuracy",
    "root_cause_recall",
    "contributing_recall",
    "action_recall",
    "action_precision",
    "citation_resolution",
    "citation_support",
}


def _details(r: dict[str, Any]) -> list[str]:
    out = [f"#### {r['slug']} ({r['id']})", ""]
    if r.get("error"):
        return out + [f"Failed to run: `{r['error']}`", ""]
    out.append("| Milestone | Expected | Inferred | Error (min) | Tolerance | Hit |")
    out.append("|---|---|---|--:|--:|---|")
    for m in r["milestones"]["rows"]:
        err = "-" if m["error_min"] is None else f"{m['error_min']:.1f}"
        out.append(
            f"| {m['name']} | {m['expected'][:16]} | {(m['inferred'] or 'missing')[:16]} | {err} | "
            f"{m['tolerance_min']:g} | {'yes' if m['hit'] else 'no'} |"
        )
    out.append("")
    for key, label in (
        ("root_cause", "Root-cause facts"),
        ("contributing", "Contributing factors"),
    ):
        missing = "; ".join(f"“{m}”" for m in r[key]["missing"]) or "none"
        out.append(f"- {label} missing: {missing}")
    a = r["actions"]
    pairs = (
        "; ".join(f"“{p['expected']}” ↔ “{p['drafted']}” ({p['score']:.2f})" for p in a["pairs"])
        or "none"
    )
    out.append(f"- Action items matched: {pairs}")
    out.append(
        f"- Expected action items not drafted: {'; '.join(a['unmatched_expected']) or 'none'}"
    )
    out.append(
        f"- Drafted action items not expected: {'; '.join(a['unmatched_drafted']) or 'none'}"
    )
    unsup = r["citations"]["unsupported"]
    if unsup:
        out.append("- Cited claims not supported by their rows:")
        out += [f"  - “{u['claim'][:160]}” {u['citations']}: {u['reason']}" for u in unsup[:8]]
    b = r["blameless"]
    for key in ("forbidden", "blame", "names"):
        if b[key]:
            out.append(f"- Blameless ({key}): {'; '.join(b[key])}")
    ents = r["unsupported_entities"]["items"]
    if ents:
        out.append(
            "- Unsupported entities: " + "; ".join(f"{e['kind']} `{e['text']}`" for e in ents)
        )
    return out + [""]


def markdown_report(report: dict[str, Any], gate: dict[str, list[str]] | None = None) -> str:
    """evals/report.md: the tables, the gate result and per-case details."""
    lines = [
        "# Eval report",
        "",
        f"Generated {report['generated_at']} with the {report['matcher']} matcher ({report['matcher_note']}).",
        "Metric definitions: [evals/README.md](README.md).",
        "",
    ]
    if len(report["engines"]) > 1:
        lines += ["## Engines side by side", "", comparison_table(report), ""]
    for name, run in report["engines"].items():
        lines += [f"## Engine: {name}", "", markdown_table(run), ""]
        if gate is not None and name in gate:
            verdict = "PASS" if not gate[name] else "FAIL: " + "; ".join(gate[name])
            lines += [f"Gate (evals/thresholds.yaml): **{verdict}**", ""]
        lines += ["### Details", ""]
        for r in run["cases"]:
            lines += _details(r)
    return "\n".join(lines).rstrip() + "\n"


def write_reports(
    report: dict[str, Any], out: Path, gate: dict[str, list[str]] | None = None
) -> tuple[Path, Path]:
    from retro.files import write_atomic  # only a regular file or a new path is replaced

    md, js = out / "report.md", out / "report.json"
    write_atomic(md, markdown_report(report, gate), fsync=False)
    payload = {**report, "gate": gate}
    write_atomic(
        js, json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n", fsync=False
    )
    return md, js
