"""Report facts from postmortem drafts: front matter, the milestones table, the action items
table, and (optionally) the git history of the files.

A report over thousands of drafts cannot afford a full Markdown parse of each (about 30 ms
for a typical draft), so this reads only what the report needs, line by line: the front matter
with libyaml, the two tables with the action table's own cell splitter and column names
(retro.actions.table), and the root cause as plain text. The result is the same as
`retro show` for those parts; tests/test_report.py checks that on the sample draft.

Who set a milestone's time:
- edited: the "Milestones and metrics" section differs from what retro last wrote (its hash in
  the front matter's `retro_hashes` no longer matches), the same test `retro generate` uses to
  keep a person's times. Every milestone of an edited section counts as edited.
- inferred: retro's rules chose it and nobody changed the section.

When the postmortem became final (its review date), first found wins:
1. the front matter's `reviewed_at` (or `status_changed_at`), which a team or a tool writes
   when it sets `status: final`;
2. the file's git history: the first commit whose diff adds a `status: final` line (also
   `reviewed`, `published` or `approved`);
3. unknown: the postmortem counts as final, with no review date.
The same git pass dates action items: the first commit whose diff adds a table row with a
closed status (done, wontfix, skipped) closes that item.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from retro.actions.table import COLUMN_NAMES, normalize_title, split_cells, unescape
from retro.draft.render import MILESTONE_LABELS, section_hash
from retro.errors import BundleError
from retro.insights.facts import CLOSED, ActionFact, IncidentFacts, Origin

_HEADING = re.compile(r"^## +(.+?)\s*$", re.M)
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_CITATION = re.compile(r"\s*\[E[0-9a-fA-F]{1,16}\]")
_LABELS = {label.casefold(): name for name, label in MILESTONE_LABELS.items()}
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z")
_FINAL_LINE = re.compile(r"^\+status:\s*['\"]?(final|reviewed|published|approved)\b", re.I)
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def iter_drafts(paths: Iterable[Path]) -> Iterator[Path]:
    """Markdown files under the given files and folders, sorted, each once."""
    seen: set[str] = set()
    for path in paths:
        if path.is_dir():  # resolved once: the files under it come out absolute
            found = sorted(path.resolve().rglob("*.md"))
        elif path.is_file():
            found = [path.resolve()]
        else:
            raise BundleError(path, "does not exist", hint="pass postmortem files or folders")
        for p in found:
            if str(p) not in seen:
                seen.add(str(p))
                yield p


def sections(body: str) -> dict[str, str]:
    """Heading -> body of each `## ` section, stripped, as `retro show` cuts them."""
    heads = list(_HEADING.finditer(body))
    out: dict[str, str] = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(body)
        out.setdefault(m.group(1).strip().casefold(), body[m.end() : end].strip())
    return out


def front_matter(text: str, path: Path) -> tuple[dict[str, Any], str]:
    if not text.startswith("---"):
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        raise BundleError(path, "front matter is not closed", hint="end it with a line `---`")
    try:
        meta = yaml.load(text[3:end], Loader=_SAFE_LOADER) or {}
    except yaml.YAMLError as exc:
        raise BundleError(path, f"front matter is not valid YAML ({exc})") from None
    rest = text.find("\n", end + 4)
    return (meta if isinstance(meta, dict) else {}), (text[rest + 1 :] if rest >= 0 else "")


def table_rows(section: str) -> tuple[list[str], list[list[str]]]:
    """(header cells, row cells) of the first table in a section."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    for line in section.splitlines():
        if not line.lstrip().startswith("|"):
            if header is not None:
                break
            continue
        if _SEPARATOR.match(line):
            continue
        cells = [unescape(line[a:b]) for a, b in split_cells(line)]
        if header is None:
            header = cells
        else:
            rows.append(cells)
    return header or [], rows


def parse_time(value: Any) -> datetime | None:
    """A table or front-matter time as aware UTC; None for unknown or empty."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value or "").strip().replace(" UTC", "")
    if not text or text.lower() in ("unknown", "-"):
        return None
    try:  # what retro writes is ISO 8601; the formats below take hand-typed variants
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _TIME_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _milestones(section: str, edited: bool) -> tuple[dict[str, datetime], dict[str, Origin]]:
    times: dict[str, datetime] = {}
    origins: dict[str, Origin] = {}
    _, rows = table_rows(section)
    for cells in rows:
        if len(cells) < 2:
            continue
        name = _LABELS.get(cells[0].strip("* ").casefold())
        at = parse_time(cells[1]) if name else None
        if name and at is not None:
            times[name] = at
            origins[name] = "edited" if edited else "inferred"
    return times, origins


def _actions(section: str) -> list[ActionFact]:
    header, rows = table_rows(section)
    roles: dict[str, int] = {}
    for i, name in enumerate(header):
        role = COLUMN_NAMES.get(" ".join(name.split()).casefold())
        if role and role not in roles:
            roles[role] = i
    for extra in ("closed", "created"):
        for i, name in enumerate(header):
            if name.strip().casefold() == extra:
                roles.setdefault(extra, i)

    def cell(cells: list[str], role: str) -> str:
        i = roles.get(role)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    out = []
    for cells in rows:
        title = cell(cells, "title")
        if not title or title.startswith("_None"):
            continue
        tracking = cell(cells, "tracking")
        out.append(
            ActionFact(
                title=title,
                status=(cell(cells, "status") or "proposed").lower(),
                priority=cell(cells, "priority").upper(),
                owner=cell(cells, "owner"),
                tracking="" if tracking == "-" else tracking,
                due=parse_time(cell(cells, "due")),
                closed=parse_time(cell(cells, "closed")),
                created=parse_time(cell(cells, "created")),
            )
        )
    return out


def _plain(section: str) -> str:
    text = _CITATION.sub("", section)
    text = re.sub(r"\*\*(Trigger|Root cause)\*\*", "", text)
    return " ".join(text.split())


def draft_facts(path: Path, text: str | None = None) -> IncidentFacts:
    """Report facts of one postmortem draft."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BundleError(path, "is not UTF-8 text", hint="save it as UTF-8") from None
    meta, body = front_matter(text, path)
    parts = sections(body)
    title_line = next((ln for ln in body.splitlines() if ln.startswith("# ")), "")
    head, _, rest = title_line[2:].partition(":")
    incident_id = str(meta.get("incident_id") or (head.strip() if rest else "") or path.stem)
    milestones = parts.get("milestones and metrics", "")
    written = (meta.get("retro_hashes") or {}).get("milestones")
    edited = bool(milestones) and (written is None or written != section_hash(milestones))
    times, origins = _milestones(milestones, edited)
    status = str(meta.get("status") or "draft").lower()
    reviewed = parse_time(meta.get("reviewed_at") or meta.get("status_changed_at"))
    return IncidentFacts(
        id=incident_id,
        title=str(meta.get("title") or rest.strip() or title_line[2:].strip() or incident_id),
        origin="draft",
        path=str(path),
        severity=str(meta["severity"]) if meta.get("severity") else None,
        services=[str(s) for s in meta.get("services") or []],
        teams=[str(t) for t in meta.get("teams") or ([meta["team"]] if meta.get("team") else [])],
        times=times,
        origins=origins,
        has_postmortem=True,
        status=status,
        reviewed_at=reviewed,
        reviewed_from="front matter" if reviewed else None,
        actions=_actions(parts.get("action items", "")),
        aliases=[str(a) for a in meta.get("aliases") or []],
        cause=_plain(parts.get("root cause and trigger", "")),
        summary=_plain(parts.get("summary", "")),
    )


# Parsing a draft takes about half a millisecond, mostly YAML and table parsing in Python: a
# cold report over thousands of drafts spreads them over the machine's cores.
PARALLEL_FROM = 1000
_CHUNK = 250


def read_drafts(paths: list[Path]) -> dict[Path, IncidentFacts | None]:
    """`draft_facts` of many drafts, None for each that raised BundleError or OSError."""
    return {
        path: IncidentFacts.model_validate_json(text) if text is not None else None
        for path, text in zip(paths, facts_json(paths), strict=True)
    }


def facts_json(paths: list[Path]) -> list[str | None]:
    """`draft_facts` of many drafts as JSON (what the cache stores, and cheaper to send between
    processes than the objects); in worker processes when there are at least PARALLEL_FROM of
    them and more than one core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(cores or 1, 8)
    if len(paths) < PARALLEL_FROM or workers < 2:
        return _facts_json(paths)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if "fork" not in multiprocessing.get_all_start_methods():
        return _facts_json(paths)
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    context = multiprocessing.get_context("fork")  # workers inherit the loaded modules
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return [text for part in pool.map(_facts_json, chunks) for text in part]


def _facts_json(paths: list[Path]) -> list[str | None]:
    out: list[str | None] = []
    for path in paths:
        try:
            out.append(draft_facts(path).model_dump_json())
        except (BundleError, OSError):
            out.append(None)
    return out


# --- the facts cache -----------------------------------------------------------------------------


class FactsCache:
    """Facts of drafts already read, by file, valid while the file's size and mtime are the same.

    A monthly report reads mostly the same drafts as last month; parsing 10,000 of them takes
    seconds, reading their cached facts a fraction of that. One SQLite file in the user data
    directory (RETRO_USER_PATH overrides it); delete it at any time.
    """

    def __init__(self, path: Path) -> None:
        import sqlite3

        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS facts (path TEXT PRIMARY KEY, size INTEGER, "
            "mtime INTEGER, version INTEGER, facts TEXT)"
        )
        self.held = {
            row[0]: (row[1], row[2], row[3], row[4])
            for row in self.conn.execute("SELECT path, size, mtime, version, facts FROM facts")
        }
        self.fresh: list[tuple[str, int, int, int, str]] = []

    def _lookup(self, path: Path) -> tuple[str, os.stat_result, IncidentFacts | None]:
        """(cache key, the file's stat, its cached facts or None when absent or stale)."""
        key = str(path if path.is_absolute() else path.resolve())
        st = path.stat()
        held = self.held.get(key)
        if held is None or held[:3] != (st.st_size, st.st_mtime_ns, CACHE_VERSION):
            return key, st, None
        cached = IncidentFacts.model_validate_json(held[3])
        cached.path = str(path)
        return key, st, cached

    def _keep(self, key: str, st: os.stat_result, text: str) -> None:
        self.fresh.append((key, st.st_size, st.st_mtime_ns, CACHE_VERSION, text))

    def read(self, path: Path) -> IncidentFacts:
        """The draft's facts, from the cache when the file has not changed."""
        key, st, cached = self._lookup(path)
        if cached is not None:
            return cached
        facts = draft_facts(path)
        self._keep(key, st, facts.model_dump_json())
        return facts

    def read_many(self, paths: list[Path]) -> dict[Path, IncidentFacts | None]:
        """Facts of many drafts: cached ones from the cache, the rest parsed by `facts_json`
        (None for a draft that could not be read: `read` on it raises the error)."""
        out: dict[Path, IncidentFacts | None] = {}
        todo: list[tuple[Path, str, os.stat_result]] = []
        for path in paths:
            try:
                key, st, out[path] = self._lookup(path)
            except OSError:
                out[path] = None
                continue
            if out[path] is None:
                todo.append((path, key, st))
        texts = facts_json([p for p, _, _ in todo])
        for (path, key, st), text in zip(todo, texts, strict=True):
            if text is not None:
                out[path] = IncidentFacts.model_validate_json(text)
                self._keep(key, st, text)
        return out

    def close(self) -> None:
        if self.fresh:
            self.conn.execute("BEGIN")
            self.conn.executemany("INSERT OR REPLACE INTO facts VALUES (?, ?, ?, ?, ?)", self.fresh)
            self.conn.execute("COMMIT")
        self.conn.close()


CACHE_VERSION = 1  # bump when draft_facts reads something new


def default_cache() -> FactsCache | None:
    """The cache in the user data directory; None when it cannot be opened."""
    import sqlite3

    from retro.config import user_dir

    try:
        return FactsCache(user_dir() / "report-facts.db")
    except (OSError, sqlite3.Error):
        return None


# --- git history -------------------------------------------------------------------------------


@dataclass
class GitDates:
    """Dates found in the drafts' git history, by resolved file path."""

    final: dict[str, datetime] = field(default_factory=dict)
    closed: dict[str, dict[str, datetime]] = field(default_factory=dict)  # path -> title -> at
    used: bool = False


def git_dates(paths: list[Path]) -> GitDates:
    """One `git log -p` per repository over the drafts; empty when they are not in git."""
    out = GitDates()
    by_root: dict[Path, list[Path]] = {}
    for path in paths:
        root = _git_root(path.parent)
        if root is not None:
            by_root.setdefault(root, []).append(path.resolve())
    for root, files in by_root.items():
        folders = sorted({str(p.parent) for p in files})
        log = _run_git(
            root,
            [
                *("log", "--reverse", "--no-color", "--no-renames", "--unified=0"),
                *("--format=%x01%cI", "-p", "-G", r"status:|\|"),
                "--",
                *folders,
            ],
        )
        if log is None:
            continue
        out.used = True
        _parse_log(log, root, out)
    return out


def _git_root(folder: Path) -> Path | None:
    found = _run_git(folder, ["rev-parse", "--show-toplevel"])
    return Path(found.strip()) if found else None


def _run_git(cwd: Path, args: list[str]) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _parse_log(log: str, root: Path, out: GitDates) -> None:
    when: datetime | None = None
    current: str | None = None
    for line in log.splitlines():
        if line.startswith("\x01"):
            when = parse_time(line[1:])
            continue
        if line.startswith("+++ "):
            name = line[4:].strip()
            current = str((root / name[2:]).resolve()) if name.startswith("b/") else None
            continue
        if current is None or when is None or not line.startswith("+") or line.startswith("+++"):
            continue
        if _FINAL_LINE.match(line):
            out.final.setdefault(current, when)
        elif line.startswith("+|"):
            cells = [unescape(line[1:][a:b]).strip() for a, b in split_cells(line[1:])]
            if len(cells) > 2 and any(c.lower() in CLOSED for c in cells[2:]):
                out.closed.setdefault(current, {}).setdefault(normalize_title(cells[1]), when)


def apply_git(facts: IncidentFacts, dates: GitDates) -> IncidentFacts:
    """Fill a draft's review date and its items' close dates from git, where the file is silent."""
    if facts.path is None:
        return facts
    key = str(Path(facts.path).resolve())
    if facts.reviewed_at is None and facts.is_final and key in dates.final:
        facts.reviewed_at = dates.final[key]
        facts.reviewed_from = "git"
    closed = dates.closed.get(key, {})
    for item in facts.actions:
        if item.is_closed and item.closed is None:
            item.closed = closed.get(normalize_title(item.title))
    return facts
