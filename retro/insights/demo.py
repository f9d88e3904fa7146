"""The sample reliability report, from the repository's own data (`make report-demo`).

    python -m retro.insights.demo out/report-demo

1. Drafts every incident bundle in the repository (the sample incident, evals/cases and
   evals/heldout) offline into OUT/postmortems/.
2. Imports the vendor samples in tests/fixtures (PagerDuty, Opsgenie, Jira, Statuspage, Rootly,
   incident.io) as history into the index OUT/index.db, and indexes the drafts there too.
3. Writes the report (Markdown, HTML, JSON, CSV) into OUT/report/, grouped by quarter, and a
   screenshot of the HTML page (OUT/report.png) when Chromium is installed.

Run it from the repository root; it needs the packaged embedding model (the `embeddings` extra).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("pagerduty", "tests/fixtures/pagerduty/incident.json", ()),
    ("opsgenie", "tests/fixtures/opsgenie", ("incidents", "alerts")),
    ("jira", "tests/fixtures/jira", ()),
    ("statuspage", "tests/fixtures/statuspage", ()),
    ("rootly", "tests/fixtures/rootly", ()),
    ("incident_io", "tests/fixtures/incident_io", ()),
)
CHROME_FLAGS = (
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
    "--hide-scrollbars",
)


def bundles() -> list[tuple[str, Path]]:
    found = [("sample", ROOT / "retro" / "sample" / "bundle")]
    for group in ("cases", "heldout"):  # never heldout-2: it is scored once, unseen
        for case in sorted((ROOT / "evals" / group).glob("*/incident.yaml")):
            found.append((case.parent.name, case.parent))
    return found


def draft_all(folder: Path) -> list[Path]:
    from retro.draft.engines.offline import OfflineEngine
    from retro.draft.pipeline import generate

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, bundle in bundles():
        target = folder / f"{name}.md"
        if not target.exists():
            generate(bundle=bundle, engine=OfflineEngine(), out=target)
        out.append(target)
    return out


def import_samples(db: str) -> None:
    from retro.connector import HistoryQuery
    from retro.index.embeddings import get_embedder
    from retro.index.store import open_store
    from retro.insights.importer import run_import

    with open_store(db) as store:
        embedder = get_embedder(None)
        for source, path, what in IMPORTS:
            query = HistoryQuery(files=[ROOT / path], what=list(what))
            result = run_import(source, query, store=store, embedder=embedder)
            print(f"{source}: {result.added} added, {result.unchanged} unchanged", file=sys.stderr)


def index_drafts(db: str, drafts: list[Path]) -> None:
    from retro.index.corpus import iter_path
    from retro.index.embeddings import get_embedder
    from retro.index.similarity import index_incidents
    from retro.index.store import open_store

    with open_store(db) as store:
        items = [item for path in drafts for item in iter_path(path)]
        index_incidents(items, store=store, embedder=get_embedder(None))


def screenshot(page: Path, png: Path) -> bool:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        return False
    profile = png.parent / ".chromium-profile"
    subprocess.run(
        [
            binary,
            *CHROME_FLAGS,
            f"--user-data-dir={profile}",
            "--window-size=1400,1700",
            f"--screenshot={png}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    shutil.rmtree(profile, ignore_errors=True)
    return png.is_file()


def main(out: Path) -> None:
    from retro.insights import make_report
    from retro.insights.output import write_outputs

    db = f"sqlite:///{(out / 'index.db').resolve()}"
    drafts = draft_all(out / "postmortems")
    import_samples(db)
    index_drafts(db, drafts)
    report = make_report(drafts=[out / "postmortems"], db=db, group_by="quarter")
    written = write_outputs(report, out / "report")
    print(f"wrote {len(written)} files to {out / 'report'}", file=sys.stderr)
    if screenshot(out / "report" / "report.html", out / "report.png"):
        print(f"screenshot: {out / 'report.png'}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/report-demo"))
