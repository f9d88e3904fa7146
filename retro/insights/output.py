"""Writing the report: Markdown (with Mermaid charts), CSV and JSON of every table, and one
self-contained HTML page whose charts Chart.js draws (its code is inlined: no server, no
network). Everything is written with the one atomic writer."""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from retro.files import write_atomic
from retro.insights.charts import Chart, build_charts
from retro.insights.report import Report, Table

CHART_JS = "chart.umd.min.js"


def _plain(table: Table) -> dict[str, Any]:
    """A table as a dict; its rows are JSON-ready already (dataclasses.asdict would copy
    every cell)."""
    return {f.name: getattr(table, f.name) for f in fields(table)}


def report_json(report: Report) -> dict[str, Any]:
    """The whole report as one JSON-ready object (what --json prints)."""
    head = report.model_dump(mode="json", exclude={"tables"})
    head["tables"] = {name: _plain(report.table(name)) for name in report.tables}
    return head


def table_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=table.columns, lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in table.columns})
    return buf.getvalue()


def _cell(value: Any) -> str:
    text = "–" if value is None or value == "" else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table, limit: int | None = None) -> str:
    rows = table.rows if limit is None else table.rows[:limit]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in table.columns) + " |" for r in rows]
    if limit is not None and len(table.rows) > limit:
        lines.append(f"\n_{len(table.rows) - limit} more rows in {table.name}.csv._")
    return "\n".join(lines)


def times_pivot(report: Report) -> Table:
    """time_to_x as one row per period: median / p90 (n) of each metric, for reading."""
    from retro.insights.report import METRICS

    src = report.table("time_to_x")
    by = {(r["period"], r["metric"]): r for r in src.rows}
    periods = list(dict.fromkeys(r["period"] for r in src.rows))
    cols = ["period", *[m.label.lower() for m in METRICS]]
    rows = []
    for period in periods:
        row: dict[str, Any] = {"period": period}
        for m in METRICS:
            r = by[(period, m.name)]
            row[m.label.lower()] = (
                f"{_fmt(r['median_min'])} / {_fmt(r['p90_min'])} (n={r['n']}; mean {_fmt(r['mean_min'])})"
                if r["n"]
                else None
            )
        rows.append(row)
    origin = [
        f"{m.label}: {by[('all', m.name)]['inferred']} inferred, {by[('all', m.name)]['edited']} "
        f"edited, {by[('all', m.name)]['imported']} imported, "
        f"{by[('all', m.name)]['from_detection']} from detection"
        for m in METRICS
    ]
    note = (
        "Median / p90 in minutes (n; the mean beside them only). Who set the times: "
        + "; ".join(origin)
        + "."
    )
    return Table(src.name, src.title, cols, rows, note)


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 120:
        return f"{value / 60:.1f}h"
    return f"{value:g}m"


def _shown(report: Report, name: str) -> Table:
    return times_pivot(report) if name == "time_to_x" else report.table(name)


def _header(report: Report) -> list[str]:
    f = report.filters
    scope = [
        f"since {f.since:%Y-%m-%d}" if f.since else "",
        f"until {f.until:%Y-%m-%d}" if f.until else "",
        f"severity {', '.join(f.severities)}" if f.severities else "",
        f"service {', '.join(f.services)}" if f.services else "",
        f"team {', '.join(f.teams)}" if f.teams else "",
    ]
    lines = [
        f"Generated {report.generated_at:%Y-%m-%d %H:%M} UTC, grouped by {report.group_by}; "
        f"{report.incidents} incidents ({report.imported} imported)"
        + (f"; {'; '.join(s for s in scope if s)}" if any(scope) else "")
        + ".",
        "",
        "Sources: " + ("; ".join(report.sources) or "none") + ".",
    ]
    if report.skipped:
        left = ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped.items()))
        lines += ["", f"Left out: {left}."]
    lines += [f"\n{n}" for n in report.notes]
    return lines


SECTIONS: tuple[tuple[str, list[str]], ...] = (
    ("time_to_x", ["resolve_trend", "ttx"]),
    ("by_severity", ["incidents"]),
    ("by_service", ["services"]),
    ("customer_impact", []),
    ("repeat_rate", ["repeats"]),
    ("repeat_pairs", []),
    ("action_items", ["actions"]),
    ("coverage", ["coverage"]),
)


def render_markdown(report: Report, charts: list[Chart] | None = None) -> str:
    charts = charts if charts is not None else build_charts(report)
    by_id = {c.id: c for c in charts}
    out = ["# Reliability report", "", *_header(report), ""]
    for name, chart_ids in SECTIONS:
        table = _shown(report, name)
        out += [f"## {table.title}", ""]
        for cid in chart_ids:
            block = by_id[cid].mermaid() if cid in by_id else ""
            if block:
                out += [block, ""]
        if table.note:
            out += [table.note, ""]
        out += [markdown_table(table, limit=60) if table.rows else "_None._", ""]
    out += ["## Definitions", ""]
    out += [f"- **{k}**: {v}" for k, v in report.definitions.items()]
    out += [
        "",
        "Every table is also in CSV and JSON beside this file; `report.html` has the "
        "interactive charts.",
    ]
    return "\n".join(out).rstrip() + "\n"


def chart_js() -> str:
    return (resources.files("retro.insights") / "vendor" / CHART_JS).read_text(encoding="utf-8")


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#23395d;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;opacity:.9}main{padding:18px 28px;max-width:1400px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:12px 14px}
.chart{position:relative;height:300px}section{margin-top:22px}h2{font-size:17px;margin:0 0 8px}
table{border-collapse:collapse;width:100%;font-size:12.5px;background:#fff}
th,td{border-bottom:1px solid #e3e6ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{max-height:360px;overflow:auto}.note{color:#555;margin:4px 0 8px}dl dt{font-weight:600}
"""


def _html_table(table: Table, limit: int = 500) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows[:limit]:
        cells = []
        for c in table.columns:
            value = row.get(c)
            cls = ' class="num"' if isinstance(value, int | float) else ""
            cells.append(f"<td{cls}>{html.escape('–' if value is None else str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f'<p class="note">{len(table.rows) - limit} more rows in {table.name}.csv</p>'
        if len(table.rows) > limit
        else ""
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>{more}'


def render_html(report: Report, charts: list[Chart] | None = None) -> str:
    charts = charts if charts is not None else build_charts(report)
    configs = {c.id: c.chartjs() for c in charts}
    cards = "".join(
        f'<div class="card"><div class="chart"><canvas id="chart-{c.id}" data-chart="{c.id}" '
        f'role="img" aria-label="{html.escape(c.title)}"></canvas></div></div>'
        for c in charts
    )
    header = "".join(
        f"<p>{html.escape(line.strip())}</p>" for line in _header(report) if line.strip()
    )
    sections = []
    for name, _ in SECTIONS + (("incidents", []),):
        table = _shown(report, name)
        note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
        sections.append(
            f"<section><h2>{html.escape(table.title)}</h2>{note}{_html_table(table)}</section>"
        )
    defs = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in report.definitions.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Reliability report</title><style>{_STYLE}</style>
<script>{chart_js()}</script>
</head><body>
<header><h1>Reliability report</h1>{header}</header>
<main><div class="grid">{cards}</div>
{"".join(sections)}
<section><h2>Definitions</h2><dl>{defs}</dl></section>
<p class="note">Charts drawn with Chart.js {_chartjs_version()} (MIT licence), inlined in this page.</p>
</main>
<script id="report-charts" type="application/json">{_script_json(configs)}</script>
<script>
(function () {{
  var configs = JSON.parse(document.getElementById("report-charts").textContent);
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {{
    new Chart(canvas, configs[canvas.dataset.chart]);
  }});
  window.reportChartsReady = Object.keys(Chart.instances).length;
}})();
</script>
</body></html>
"""


def _chartjs_version() -> str:
    head = chart_js()[:200]
    marker = "Chart.js v"
    i = head.find(marker)
    return head[i + len(marker) :].split()[0] if i >= 0 else ""


def write_outputs(report: Report, out: Path, *, formats: set[str] | None = None) -> list[Path]:
    """report.md, report.html, report.json and <table>.csv under `out`; the paths written."""
    formats = formats or {"md", "html", "json", "csv"}
    charts = build_charts(report)
    written: list[Path] = []
    if "md" in formats:
        written.append(_write(out / "report.md", render_markdown(report, charts)))
    if "html" in formats:
        written.append(_write(out / "report.html", render_html(report, charts)))
    if "json" in formats:
        # orjson writes what json.dumps(indent=2, ensure_ascii=False) does, several times faster
        text = orjson.dumps(report_json(report), option=orjson.OPT_INDENT_2).decode() + "\n"
        written.append(_write(out / "report.json", text))
    if "csv" in formats:
        for name in report.tables:
            written.append(_write(out / f"{name}.csv", table_csv(report.table(name))))
    return written


def _write(path: Path, text: str) -> Path:
    write_atomic(path, text, fsync=False)
    return path
