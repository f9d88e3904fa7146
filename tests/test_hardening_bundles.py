"""Issue 12, items 7, 8 and 9: hostile and invalid bundles give one line and exit code 2 (or a
counted skip with --lenient), never a traceback, an unbounded allocation or a silent loss.
"""

from __future__ import annotations

import json
import struct
import tracemalloc
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bundle_factory import CHAT, msg, write_bundle
from click.testing import CliRunner, Result

from retro.cli.main import cli
from retro.connector import parse_time
from retro.errors import BundleError
from retro.models import IncidentMeta, Provenance, TimelineEvent
from retro.timeline import bundle as bundle_mod
from retro.timeline.normalize import build_timeline


def _timeline(bundle: Path, *extra: str) -> Result:
    return CliRunner().invoke(cli, ["timeline", "--bundle", str(bundle), *extra])


def _one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    err = result.stderr
    assert err.startswith("retro: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


# --- item 7: zip bombs ---------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes | int]) -> Path:
    """A zip; an int member is that many zero bytes, written in chunks (never held whole)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if isinstance(data, int):
                with archive.open(name, "w", force_zip64=True) as fh:
                    chunk = b"0" * (1 << 20)
                    for _ in range(data // len(chunk)):
                        fh.write(chunk)
            else:
                archive.writestr(name, data)
    return path


def test_a_zip_bomb_member_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    _zip(bundle / "export.zip", {"slack/bomb.json": 64 << 20})  # 64 MiB of "0", ~1000:1
    tracemalloc.start()
    try:
        result = _timeline(bundle)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _one_line_error(result, "export.zip/slack/bomb.json", "expands", "limit of 100")
    assert peak < 32 << 20, f"peak {peak / 2**20:.0f} MiB: the member was inflated"


def test_with_lenient_a_zip_bomb_member_is_a_counted_skip(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    _zip(bundle / "export.zip", {"slack/bomb.json": 8 << 20})
    result = _timeline(bundle, "--lenient")
    assert result.exit_code == 0, result.output
    assert "1 unreadable file skipped: export.zip/slack/bomb.json" in result.stdout


def test_a_zip_over_the_total_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle_mod, "MAX_ZIP_BYTES", 10_000)
    bundle = write_bundle(tmp_path / "b")
    members = {
        f"notes/{n}.json": json.dumps({"n": n, "pad": "x" * 3000}).encode() for n in range(5)
    }
    _zip(bundle / "export.zip", members)
    _one_line_error(_timeline(bundle), "uncompressed")


def test_a_member_that_lies_about_its_size_fails_cleanly(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    data = json.dumps([{"k": "v" * 50} for _ in range(20_000)]).encode()  # ~1.2 MB
    path = _zip(bundle / "export.zip", {"slack/lies.json": data})
    raw = bytearray(path.read_bytes())
    small = struct.pack("<I", 1000)
    raw[22:26] = small  # local header: uncompressed size
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = small  # central directory: uncompressed size
    path.write_bytes(bytes(raw))
    _one_line_error(_timeline(bundle), "export.zip/slack/lies.json", "cannot be extracted")


def test_a_file_that_is_not_a_zip_is_one_line(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    (bundle / "export.zip").write_bytes(b"PK\x03\x04 not really a zip")
    _one_line_error(_timeline(bundle), "not a valid zip archive")
    assert _timeline(bundle, "--lenient").exit_code == 0


# --- item 8: tracebacks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "id: INC-1\ntitle: Caf\xe9\n".encode("latin-1"),
        bytes(range(256)) * 4,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ],
    ids=["latin-1", "binary", "png"],
)
def test_an_incident_yaml_that_is_not_utf8_is_one_line(tmp_path: Path, payload: bytes) -> None:
    bundle = write_bundle(tmp_path / "b")
    (bundle / "incident.yaml").write_bytes(payload)
    _one_line_error(_timeline(bundle), "incident.yaml")


def test_a_yaml_alias_bomb_in_incident_yaml_is_refused(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    lines = ["id: INC-1", 'a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    (bundle / "incident.yaml").write_text("\n".join(lines) + "\n")
    _one_line_error(_timeline(bundle), "incident.yaml", "aliases")


@pytest.mark.parametrize("depth", [129, 1000, 5000])
def test_json_nested_too_deep_is_one_line(tmp_path: Path, depth: int) -> None:
    bundle = write_bundle(tmp_path / "b")
    (bundle / "slack" / "deep.json").write_text("[" * depth + "]" * depth)
    _one_line_error(_timeline(bundle), "slack/deep.json", "nested deeper than 128")
    lenient = _timeline(bundle, "--lenient")
    assert lenient.exit_code == 0 and "unreadable file skipped: slack/deep.json" in lenient.stdout


def test_a_deep_jsonl_record_is_one_line(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    deep = '{"x":' * 400 + "1" + "}" * 400
    (bundle / "events.jsonl").write_text(
        '{"at": "2024-05-01T14:05:00Z", "text": "ok"}\n{"at": "2024-05-01T14:06:00Z", '
        f'"text": "deep", "extra": {deep}}}\n'
    )
    _one_line_error(_timeline(bundle), "events.jsonl line 2", "nested deeper")


def test_json_nested_within_the_limit_is_read(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    nested = '{"x":' * 120 + "1" + "}" * 120
    (bundle / "events.jsonl").write_text(
        f'{{"at": "2024-05-01T14:06:00Z", "text": "nested note", "extra": {nested}}}\n'
    )
    result = _timeline(bundle, "--format", "json")
    assert result.exit_code == 0, result.output
    assert "nested note" in result.stdout


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+01:00",
        "2200-01-01T00:00:00Z",
        253402300799999,
        1e20,
        float("inf"),
        float("nan"),
        -1,
    ],
)
def test_parse_time_refuses_times_outside_the_range_with_a_bundle_error(value: Any) -> None:
    with pytest.raises(BundleError):
        parse_time(value, path="f.json", record="r")


def test_parse_time_keeps_ordinary_times() -> None:
    assert parse_time("2024-05-01T14:05:00Z") == datetime(2024, 5, 1, 14, 5, tzinfo=UTC)
    assert parse_time(1714572300) == datetime(2024, 5, 1, 14, 5, tzinfo=UTC)
    assert parse_time("2199-12-31T23:59:59Z").year == 2199


def _generic(bundle: Path, at: str) -> None:
    (bundle / "events.jsonl").write_text(
        json.dumps({"at": at, "text": "a deploy from the far future"}) + "\n"
    )


def test_a_year_9999_timestamp_is_one_line_or_a_counted_skip(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    _generic(bundle, "9999-12-31T23:59:59Z")
    _one_line_error(_timeline(bundle), "events.jsonl", "outside the years 1970 to 2199")
    lenient = _timeline(bundle, "--lenient")
    assert lenient.exit_code == 0 and "outside the years" in lenient.stdout


def test_a_year_9999_alert_is_one_line(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    path = bundle / "alertmanager" / "firing-1.json"
    body = json.loads(path.read_text())
    body["alerts"][0]["startsAt"] = "9999-12-31T23:59:59Z"
    path.write_text(json.dumps(body))
    result = _timeline(bundle)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "firing-1.json" in result.stderr


def test_a_slack_ts_in_year_5138_does_not_overflow_the_margins(tmp_path: Path) -> None:
    chat = [*CHAT, {"type": "message", "user": "U01", "text": "far", "ts": "99999999999.000000"}]
    bundle = write_bundle(tmp_path / "b", chat=chat)
    result = _timeline(bundle)
    assert result.exit_code == 0, result.output


def test_the_window_margins_never_overflow() -> None:
    far = datetime(9999, 12, 31, 23, 50, tzinfo=UTC)
    events = [
        TimelineEvent.of(
            key=f"generic:x:{n}",
            at=far + timedelta(minutes=n),
            source="generic",
            kind=kind,
            text="errors",
            provenance=Provenance.of("x", str(n)),
        )
        for n, kind in enumerate(["alert_firing", "page_triggered", "alert_resolved"])
    ]
    timeline = build_timeline(incident=IncidentMeta(id="X"), events=events, reports=[])
    assert timeline.window is not None and len(timeline.events) == 3


# --- item 9: silent acceptance -------------------------------------------------------------------


def test_a_window_that_ends_before_it_starts_is_an_error(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    with (bundle / "incident.yaml").open("a") as fh:
        fh.write("window:\n  start: 2024-05-01T16:00:00Z\n  end: 2024-05-01T13:00:00Z\n")
    _one_line_error(_timeline(bundle), "incident.yaml", "window.end", "not after window.start")


@pytest.mark.parametrize(
    "window",
    [
        "  start: 0001-01-01T00:00:00+01:00\n",  # YAML makes it a datetime; UTC is year 0
        "  start: 9999-12-31T23:00:00-05:00\n",
        "  start: 2024-05-01T25:00:00Z\n",  # PyYAML raises ValueError, not a YAMLError
        "  end: 9999-12-31T23:59:59Z\n",
    ],
)
def test_a_window_at_the_calendars_edge_is_one_line(tmp_path: Path, window: str) -> None:
    bundle = write_bundle(tmp_path / "b")
    with (bundle / "incident.yaml").open("a") as fh:
        fh.write("window:\n" + window)
    _one_line_error(_timeline(bundle), "incident.yaml")


def test_a_window_that_holds_no_event_is_an_error(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    with (bundle / "incident.yaml").open("a") as fh:
        fh.write("window:\n  start: 2023-01-01T00:00:00Z\n  end: 2023-01-02T00:00:00Z\n")
    _one_line_error(_timeline(bundle), "incident.yaml window", "holds none of the")


@pytest.mark.parametrize(("text", "kind"), [({"a": 1}, "an object"), (42, "a number")])
def test_a_slack_text_that_is_not_a_string_is_an_error_or_a_counted_skip(
    tmp_path: Path, text: Any, kind: str
) -> None:
    chat = [*CHAT, {**msg("U01", 7, ""), "text": text}]
    bundle = write_bundle(tmp_path / "b", chat=chat)
    _one_line_error(_timeline(bundle), f"text is {kind}, not a string")
    lenient = _timeline(bundle, "--lenient", "--format", "md")
    assert lenient.exit_code == 0
    assert "1 invalid message: slack/inc-101/2024-05-01.json [" in lenient.stdout
    assert f"text is {kind}" in lenient.stdout


def test_a_conflicting_duplicate_slack_message_is_counted_and_the_first_kept(
    tmp_path: Path,
) -> None:
    first = msg("U01", 7, "The pool is at 5 connections")
    second = {**first, "text": "Everything is fine, nothing to see"}
    chat = [*CHAT, first, second]
    bundle = write_bundle(tmp_path / "b", chat=chat)
    result = _timeline(bundle)
    assert result.exit_code == 0, result.output
    assert "The pool is at 5 connections" in result.stdout
    assert "Everything is fine" not in result.stdout
    assert "1 conflicting duplicate message (same channel and ts, different content)" in (
        result.stdout
    )


def test_an_exact_duplicate_slack_message_is_still_a_plain_duplicate(tmp_path: Path) -> None:
    first = msg("U01", 7, "The pool is at 5 connections")
    bundle = write_bundle(tmp_path / "b", chat=[*CHAT, first, dict(first)])
    result = _timeline(bundle)
    assert "1 duplicate message (same channel and ts)" in result.stdout
    assert "conflicting" not in result.stdout


def test_lenient_skips_a_corrupt_file_and_counts_it(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    (bundle / "pagerduty" / "broken.json").write_text('{"log_entries": [{"id": ')
    _one_line_error(_timeline(bundle), "pagerduty/broken.json", "truncated JSON")
    lenient = _timeline(bundle, "--lenient")
    assert lenient.exit_code == 0, lenient.output
    assert (
        "1 unreadable file skipped: pagerduty/broken.json line 1 column 25: truncated JSON"
        in lenient.stdout
    )
    assert "bundle: partial" in lenient.stdout


def test_a_malformed_csv_is_one_line(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    (bundle / "events.csv").write_text(
        "at,text\n" + '2024-05-01T14:05:00Z,"' + "x" * 200_000 + '"\n'
    )
    _one_line_error(_timeline(bundle), "events.csv", "malformed CSV")
