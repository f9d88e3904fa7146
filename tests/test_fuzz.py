"""Fuzz the readers (issue 12, "Habit"): random and mutated bundles and drafts never give a
traceback, only exit code 0 or 2 (1 too for `retro check`, which means findings), and never an
unbounded allocation.

Every connector's files (the sample bundle and one saved body per vendor in tests/fixtures),
zips of them and incident.yaml are mutated at the byte and at the JSON level, mixed with
generated records of the vendors' shapes holding hostile values; drafts are mutated line by
line, character by character and in their front matter. Each run is in-process with click's
CliRunner, under tracemalloc: the peak of Python allocations must stay under MEMORY_CAP.

`make test` runs a small, derandomized budget. `make fuzz` runs many more random examples:
RETRO_FUZZ_EXAMPLES=5000 make fuzz
"""

from __future__ import annotations

import io
import json
import os
import random
import tempfile
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retro.cli.main import cli
from retro.draft.review import parse_document, read_postmortem
from retro.errors import RetroError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "retro" / "sample" / "bundle"
FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = int(os.environ.get("RETRO_FUZZ_EXAMPLES", "0"))
MEMORY_CAP = 160 * 2**20  # bytes of Python allocations at the peak of one run


def budget(n: int) -> settings:
    """n examples in `make test` (the same ones every run); RETRO_FUZZ_EXAMPLES, random, else."""
    return settings(
        max_examples=EXAMPLES or n,
        deadline=None,
        derandomize=not EXAMPLES,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- the corpus: every connector's files ----------------------------------------------------------


def _corpus() -> dict[str, bytes]:
    files = {
        p.relative_to(SAMPLE).as_posix(): p.read_bytes()
        for p in sorted(SAMPLE.rglob("*"))
        if p.is_file() and p.name != "incident.yaml"
    }
    for vendor in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        smallest = sorted(
            (p for p in vendor.iterdir() if p.suffix in (".json", ".vtt", ".jsonl", ".csv")),
            key=lambda p: p.stat().st_size,
        )
        for path in smallest[:2]:
            if path.stat().st_size < 64_000:
                files[f"{vendor.name}/{path.name}"] = path.read_bytes()
    return files


CORPUS = _corpus()
NAMES = sorted(CORPUS)
INCIDENT = (SAMPLE / "incident.yaml").read_bytes()

HOSTILE_STRINGS = [
    "",
    " ",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "2024-05-14T14:03:00",
    "2024-13-45T25:61:00Z",
    "1715695380.000100",
    "253402300799",
    "99999999999999999999",
    "NaN",
    "\x00",
    "\x1b[31mred\x1b[0m",
    "\u202egnp.exe",
    "\ud7ff\ufffd",
    "javascript:alert(1)",
    "![](https://track.example/p.gif)",
    '=HYPERLINK("http://x")',
    "<@U0000000>",
    "<!date^99999999999^{date}|x>",
    "a" * 5000,
    "| pipe | in | text |",
    "## Summary",
    "---",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(HOSTILE_STRINGS),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.one_of(
                st.sampled_from(["type", "ts", "text", "user", "id", "at"]), st.text(max_size=8)
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=12,
)


SLACK_FIELDS = (
    "type",
    "user",
    "text",
    "ts",
    "subtype",
    "thread_ts",
    "blocks",
    "attachments",
    "files",
    "reactions",
    "edited",
    "channel",
    "user_profile",
    "bot_profile",
    "bot_id",
    "username",
    "reply_count",
    "message",
)


def _slack_message(draw: Callable[[Any], Any]) -> dict[str, Any]:
    """A record of a Slack day file, each field of the wrong shape now and then."""
    base: dict[str, Any] = {
        "type": "message",
        "user": "U01",
        "text": "x",
        "ts": "1715695380.000100",
    }
    for field in SLACK_FIELDS:
        if draw(st.integers(0, 2)) == 0:
            base[field] = draw(json_values)
    return base


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if len(out) > 400:
        return out
    if isinstance(value, dict):
        for k, v in list(value.items())[:30]:
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:30]):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    value[head] = _replace(value[head], rest, new)
    return value


def _mutate_bytes(data: bytes, rnd: random.Random) -> bytes:
    """Flip, cut, insert or repeat bytes, as a truncating exporter or a bad disk would."""
    if not data:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 64)))
    op = rnd.randrange(5)
    at = rnd.randrange(len(data))
    if op == 0:
        return data[:at]
    if op == 1:
        return data[:at] + bytes([rnd.randrange(256)]) + data[at + 1 :]
    if op == 2:
        return (
            data[:at] + rnd.choice([b"\x00", b"\xff\xfe", b"\r", b"[" * 300, b"\xe9"]) + data[at:]
        )
    if op == 3:
        end = min(len(data), at + rnd.randrange(1, 200))
        return data[:end] + data[at:end] * rnd.randrange(2, 5) + data[end:]
    return data[at:] + data[:at]


@st.composite
def bundles(draw: Callable[[Any], Any]) -> dict[str, bytes]:
    """A bundle's files: incident.yaml and a few corpus files, mutated, sometimes zipped."""
    rnd = random.Random(draw(st.integers(0, 2**32)))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True))
    files = {name: CORPUS[name] for name in names}
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(sorted(files)))
        how = draw(st.sampled_from(["json", "json", "bytes", "drop", "copy"]))
        if how == "bytes":
            files[name] = _mutate_bytes(files[name], rnd)
        elif how == "drop" and len(files) > 1:
            del files[name]
        elif how == "copy":
            files[name.rsplit(".", 1)[0] + "-copy.json"] = files[name]
        else:
            try:
                value = json.loads(files[name])
            except ValueError:
                continue
            paths = _paths(value)
            path = paths[draw(st.integers(0, len(paths) - 1))]
            files[name] = json.dumps(_replace(value, path, draw(json_values))).encode()
    if draw(st.booleans()):
        day = [_slack_message(draw) for _ in range(draw(st.integers(1, 4)))]
        files["slack/inc-fuzz/2024-05-14.json"] = json.dumps(day).encode()
    if draw(st.integers(0, 4)) == 0:
        files[draw(st.sampled_from(["x.json", "pagerduty/x.json", "events.jsonl"]))] = json.dumps(
            draw(json_values)
        ).encode()
    if draw(st.integers(0, 3)) == 0:
        files = _zipped(files, draw, rnd)
    files["incident.yaml"] = draw(incident_yaml(rnd)) if draw(st.integers(0, 2)) == 0 else INCIDENT
    return files


def _zipped(
    files: dict[str, bytes], draw: Callable[[Any], Any], rnd: random.Random
) -> dict[str, bytes]:
    inside = draw(st.lists(st.sampled_from(sorted(files)), min_size=1, unique=True))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in inside:
            archive.writestr(name, files.pop(name))
    data = buffer.getvalue()
    files["export.zip"] = _mutate_bytes(data, rnd) if draw(st.booleans()) else data
    return files


def incident_yaml(rnd: random.Random) -> st.SearchStrategy[bytes]:
    fields = st.fixed_dictionaries(
        {"id": st.one_of(st.just("INC-1"), json_values)},
        optional={
            "window": st.one_of(
                st.fixed_dictionaries(
                    {
                        "start": st.sampled_from(HOSTILE_STRINGS[:8]),
                        "end": st.sampled_from(HOSTILE_STRINGS[:8]),
                    }
                ),
                json_values,
            ),
            "timezone": st.one_of(
                st.sampled_from(["UTC", "Europe/Berlin", "Mars/Olympus", ""]), json_values
            ),
            "slack_channels": json_values,
            "people": json_values,
            "severity": json_values,
        },
    )
    raw_lines = st.lists(
        st.sampled_from(
            [
                "window:\n  start: 0001-01-01T00:00:00+01:00",
                "window:\n  end: 9999-12-31T23:59:59-05:00",
                "window:\n  start: 2024-05-14T25:00:00Z",
                "window:\n  start: 2024-05-14T15:00:00Z\n  end: 2024-05-14T13:00:00Z",
                "timezone: Mars/Olympus",
                "slack_channels: *x",
                "people: {U1: [1]}",
                "a: &x [*x]",
            ]
        ),
        max_size=3,
    ).map(lambda lines: b"id: INC-1\n" + "\n".join(lines).encode() + b"\n")
    return st.one_of(
        st.just(INCIDENT),
        raw_lines,
        st.just(INCIDENT).map(lambda b: _mutate_bytes(b, rnd)),
        fields.map(lambda d: json.dumps(d).encode()),  # JSON is YAML too
        st.binary(max_size=200),
    )


# --- running a command under the guards ---------------------------------------------------------


def run_guarded(args: list[str], allowed: tuple[int, ...] = (0, 2)) -> Result:
    tracemalloc.start()
    try:
        result = CliRunner().invoke(cli, args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(*result.exc_info))  # type: ignore[misc]
        pytest.fail(f"retro {' '.join(args)} raised:\n{trace}")
    assert result.exit_code in allowed, (args, result.exit_code, result.output[-2000:])
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.stderr.startswith("retro: error: "), result.stderr[-500:]
    assert peak < MEMORY_CAP, f"peak {peak / 2**20:.0f} MiB for retro {' '.join(args)}"
    return result


def _write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@budget(80)
@given(files=bundles(), fmt=st.sampled_from(["md", "json", "csv"]), lenient=st.booleans())
def test_timeline_never_crashes_on_a_mutated_bundle(
    files: dict[str, bytes], fmt: str, lenient: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp), files)
        args = ["timeline", "--bundle", tmp, "--format", fmt] + (["--lenient"] if lenient else [])
        run_guarded(args)


@budget(3)
@given(files=bundles(), lenient=st.booleans())
def test_generate_never_crashes_on_a_mutated_bundle(files: dict[str, bytes], lenient: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp) / "b", files)
        out = str(Path(tmp) / "d.md")
        args = ["generate", "--bundle", f"{tmp}/b", "--out", out] + (
            ["--lenient"] if lenient else []
        )
        result = run_guarded(args)
        if result.exit_code == 0:  # what retro writes, it reads back
            run_guarded(["show", out, "--json"])
            run_guarded(["check", out], allowed=(0, 1))


# --- drafts --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bundle_factory import write_bundle

    return write_bundle(tmp_path_factory.mktemp("fuzz") / "bundle")


@pytest.fixture(scope="module")
def base_draft(small_bundle: Path) -> str:
    out = small_bundle.parent / "d.md"
    result = CliRunner().invoke(cli, ["generate", "--bundle", str(small_bundle), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


MARKDOWN_LINES = [
    "## Summary",
    "## Milestones and metrics",
    "## Action items",
    "## Timeline",
    "# Title: x",
    "| Milestone | Time (UTC) | Evidence | Confidence | Rule |",
    "|---|---|---|---|---|",
    "| Mitigated | 9999-12-31 23:59:59 | E1 | nan | x |",
    "| Mitigated | around noon | Eab | 2 | y |",
    "| 1 | Do a thing | prevent | P1 | platform team | An alert fires in a test | [E1] | - | approved |",
    "| # | Action | Type | Priority | Owner | End state | Evidence | Tracking | Status |",
    "```",
    "~~~",
    "---",
    "retro_hashes: [1, 2]",
    "retro_hashes: {1: 2, milestones.mitigated: [1], milestones.rest: null}",
    "retro_evidence: {E1: 5}",
    "retro_evidence: [E1]",
    "services: 5",
    "services: {a: 1}",
    "title: [1, 2]",
    "incident_id: {a: 1}",
    "started: 99999-01-01",
    "ended: 2024-05-14T25:00:00Z",
    "status: [x]",
    "> quote | x",
    "- list item [Edeadbeef]",
    "<div>",
    "    indented | code",
    "a: &x [*x]",
    "\x00\x1b[2J\u202e",
    "",
]


@st.composite
def drafts(draw: Callable[[Any], Any], base: str) -> str:
    lines = base.split("\n")
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.integers(0, 6))
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        if op == 0 and lines:
            del lines[at]
        elif op == 1:
            lines.insert(at, draw(st.sampled_from(MARKDOWN_LINES)))
        elif op == 2:
            lines.insert(at, draw(st.text(max_size=80)))
        elif op == 3 and lines:
            lines[at] = draw(st.sampled_from(HOSTILE_STRINGS))
        elif op == 4 and lines:
            cut = draw(st.integers(0, len(lines[at])))
            lines[at] = (
                lines[at][:cut]
                + draw(st.sampled_from(["|", "\\|", "\r", "\t", "\x00", "`"]))
                + lines[at][cut:]
            )
        elif op == 5:
            lines = lines[:at]
        else:
            end = min(len(lines), at + draw(st.integers(1, 40)))
            lines[at:at] = lines[at:end] * draw(st.integers(1, 3))
    text = "\n".join(lines)
    return text.replace("\n", "\r\n") if draw(st.integers(0, 5)) == 0 else text


def test_draft_readers_never_crash_on_a_mutated_draft(base_draft: str) -> None:
    @budget(60)
    @given(text=drafts(base_draft), command=st.sampled_from(["show", "show-json", "check"]))
    def run(text: str, command: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "d.md"
            path.write_bytes(text.encode("utf-8", "surrogatepass"))
            if command == "check":
                run_guarded(["check", str(path)], allowed=(0, 1, 2))
            else:
                run_guarded(["show", str(path)] + (["--json"] if command == "show-json" else []))

    run()


def test_check_with_the_bundle_never_crashes_on_a_mutated_draft(
    base_draft: str, small_bundle: Path
) -> None:
    @budget(6)
    @given(text=drafts(base_draft))
    def run(text: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "d.md"
            path.write_bytes(text.encode("utf-8", "surrogatepass"))
            run_guarded(["check", str(path), "--bundle", str(small_bundle)], allowed=(0, 1, 2))

    run()


def test_generate_over_a_mutated_draft_never_crashes(base_draft: str, small_bundle: Path) -> None:
    @budget(3)
    @given(text=drafts(base_draft))
    def run(text: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "d.md"
            path.write_bytes(text.encode("utf-8", "surrogatepass"))
            run_guarded(["generate", "--bundle", str(small_bundle), "--out", str(path)])

    run()


@budget(300)
@given(
    text=st.text(
        alphabet=st.sampled_from(list("|-#>`~ \n\r\t:*[]()E0a1\\") + ["\x00", "é", "\u2028"]),
        max_size=400,
    )
)
def test_parse_document_takes_any_text(text: str) -> None:
    """The parser itself, on text made of Markdown's special characters: a RetroError at most."""
    try:
        doc = parse_document(text)
    except RetroError:
        return
    assert all(s.start <= s.end for s in doc.sections.values())


def test_read_postmortem_of_the_base_draft_round_trips(base_draft: str, tmp_path: Path) -> None:
    path = tmp_path / "d.md"
    path.write_text(base_draft, encoding="utf-8")
    pm = read_postmortem(path)
    assert pm.timeline and pm.milestones
