"""The fast paths behind `retro timeline` give the same results as the plain code they replace."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from bundle_factory import write_bundle
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.alertmanager.read import _iso_key_time, key_time
from retro import registry
from retro.cli.main import cli
from retro.models import Actor, Provenance, TimelineEvent
from retro.timeline import output as timeline_output
from retro.timeline.bundle import loads
from retro.timeline.normalize import sort_events, sort_key
from retro.timeline.people import _IC_SELF, _may_name_ic

T0 = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)


def test_trusted_event_equals_a_validated_one() -> None:
    values = {
        "key": "slack:C1:1714571000.000100",
        "at": datetime(2024, 5, 1, 16, 0, tzinfo=timezone(timedelta(hours=2))),
        "source": "slack",
        "kind": "message",
        "actor": Actor(source="slack", id="U1", name="Dana"),
        "text": "rolling back",
        "attrs": {"channel": "inc"},
    }
    checked = TimelineEvent(provenance=Provenance(file="f.json", record="[0]"), **values)
    trusted = TimelineEvent.of(provenance=Provenance.of("f.json", "[0]"), **values)  # type: ignore[arg-type]
    assert trusted == checked
    assert trusted.model_dump_json() == checked.model_dump_json()
    assert trusted.at.tzinfo is UTC and trusted.at == values["at"]


def test_trusted_event_rejects_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TimelineEvent.of(
            key="k",
            at=datetime(2024, 5, 1, 12, 0),
            source="generic",
            kind="note",
            provenance=Provenance.of("f", "r"),
        )


def test_trusted_events_share_nothing_mutable() -> None:
    def make(key: str) -> TimelineEvent:
        return TimelineEvent.of(
            key=key, at=T0, source="generic", kind="note", provenance=Provenance.of("f", key)
        )

    a, b = make("a"), make("b")
    a.id, a.text = "E1", "changed"
    a.attrs["x"] = 1
    a.links.append("E2")
    assert (b.id, b.text, b.attrs, b.links) == ("", "", {}, [])
    assert a.model_copy(deep=True) == a and a.model_fields_set == set(TimelineEvent.model_fields)


def test_loads_falls_back_to_the_standard_library() -> None:
    assert loads('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    data = loads('[NaN, 123456789012345678901234567890, "caf\\u00e9"]')
    assert data[1] == 123456789012345678901234567890 and data[2] == "café"
    # a lone surrogate is not a character; it becomes U+FFFD, a valid pair stays one character
    assert loads('{"t": "a \\ud800 b \\ud83d\\ude00", "\\udfff": 1}') == {
        "t": "a \ufffd b 😀",
        "\ufffd": 1,
    }
    with pytest.raises(json.JSONDecodeError, match="line 1 column 6"):
        loads('{"a":')


def test_timeline_with_a_lone_surrogate_prints_valid_utf8(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "incident.yaml").write_text("id: X\n")
    (bundle / "events.jsonl").write_text(
        '{"at": "2024-05-01T12:00:00Z", "actor": "bob", "text": "bad \\ud800 here"}\n'
    )
    for fmt in ("json", "md", "csv"):
        result = CliRunner().invoke(cli, ["timeline", "--bundle", str(bundle), "--format", fmt])
        assert result.exit_code == 0, result.output
        assert "bad \ufffd here" in result.stdout_bytes.decode("utf-8")


def test_json_output_in_slices_matches_json_dumps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = str(write_bundle(tmp_path / "b"))
    whole = CliRunner().invoke(cli, ["timeline", "--bundle", bundle, "--format", "json"])
    rows = json.loads(whole.stdout)
    assert whole.stdout == json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    monkeypatch.setattr(timeline_output, "_ROWS_PER_SLICE", 3)
    sliced = CliRunner().invoke(cli, ["timeline", "--bundle", bundle, "--format", "json"])
    assert len(rows) > 3 and sliced.stdout == whole.stdout


def _event(key: str, minutes: int, source: str) -> TimelineEvent:
    return TimelineEvent.of(
        key=key,
        at=T0 + timedelta(minutes=minutes),
        source=source,  # type: ignore[arg-type]
        kind="note",
        provenance=Provenance.of("f", key),
    )


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 30), st.integers(0, 5), st.sampled_from(sorted(registry.source_info()))
        ),
        max_size=60,
    )
)
def test_sort_events_is_the_sort_key_order(specs: list[tuple[int, int, str]]) -> None:
    events = [_event(f"k{key}", minutes, source) for key, minutes, source in specs]
    assert sort_events(events) == sorted(events, key=sort_key)


_IC_WORDS = [
    "I'm", "i am", "IC", "ic", "Ic", "incident commander", "Commander", "incident lead",
    "Incident Manager", "taking", "acting as", "I'll be", "I'll take", "the", "metric",
    "service", "_ic", "ic_", "ic.", "(ic)", "ic9", "9ic", "é", "İC", "@dana", "is",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(_IC_WORDS), min_size=1, max_size=8),
    st.sampled_from([" ", "", ".", "-", "\n"]),
)
def test_ic_prefilter_never_hides_a_declaration(words: list[str], sep: str) -> None:
    text = sep.join(words)
    if _IC_SELF.search(text):
        assert _may_name_ic(text)


def test_ic_prefilter_skips_ordinary_chat() -> None:
    assert not _may_name_ic("checkout errors are back to normal, metric looks fine")
    assert _may_name_ic("I'll be IC for this one")


def test_key_time_from_isoformat() -> None:
    rnd = random.Random(7)
    for _ in range(2000):
        at = T0 + timedelta(microseconds=rnd.randrange(10**13))
        if rnd.random() < 0.3:
            at = at.replace(microsecond=0)
        assert _iso_key_time(at.isoformat()) == key_time(at)


def test_reading_a_bundle_does_not_load_the_api_clients() -> None:
    code = (
        "import sys; from retro import registry; registry.connectors(); "
        "print(','.join(m for m in ('httpx', 'slack_sdk', 'jira', 'rich') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def _links_brute_force(events: list[TimelineEvent]) -> dict[str, str | None]:
    """Every pager against every monitor: what link_cross_source must agree with."""
    from retro.timeline.normalize import LINK_WINDOW, alert_name

    monitors = [e for e in events if e.kind == "alert_firing" and e.source == "alertmanager"]
    out: dict[str, str | None] = {}
    for pager in (e for e in events if e.source == "pagerduty"):
        pname, best = alert_name(pager), None
        for monitor in monitors:
            if abs(monitor.at - pager.at) > LINK_WINDOW:
                continue
            mname = alert_name(monitor)
            same = bool(mname and pname and (mname in pname or pname in mname))
            if same and (best is None or abs(monitor.at - pager.at) < abs(best.at - pager.at)):
                best = monitor
        out[pager.id] = best.id if best else None
    return out


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["alertmanager", "pagerduty"]),
            st.integers(0, 60),
            st.sampled_from(["DiskFull", "HighLatency", "Disk", ""]),
        ),
        max_size=40,
    )
)
def test_cross_source_links_match_the_brute_force(specs: list[tuple[str, int, str]]) -> None:
    from retro.timeline.normalize import assign_ids, link_cross_source

    events = [
        TimelineEvent.of(
            key=f"{source}:{n}",
            at=T0 + timedelta(minutes=minutes),
            source=source,  # type: ignore[arg-type]
            kind="alert_firing" if source == "alertmanager" else "page_triggered",
            text=name,
            provenance=Provenance.of("f", str(n)),
            attrs={"alertname": name} if name else {},
        )
        for n, (source, minutes, name) in enumerate(specs)
    ]
    events = sort_events(events)
    assign_ids(events)
    expected = _links_brute_force(events)
    link_cross_source(events)
    assert {e.id: e.duplicate_of for e in events if e.source == "pagerduty"} == expected
