"""Reading bundles: content-based recognition, and one clear line for every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bundle_factory import write_bundle
from click.testing import CliRunner

from retro.cli.main import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("retro: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_timeline_json_lists_events_with_the_documented_keys(tmp_path: Path) -> None:
    code, out, _ = run(
        "timeline", "--bundle", str(write_bundle(tmp_path / "b")), "--format", "json"
    )
    assert code == 0
    events = json.loads(out)
    assert {"id", "at", "source", "kind", "actor", "text"} <= set(events[0])
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert {e["source"] for e in events} == {"slack", "alertmanager", "pagerduty"}
    firing = [e for e in events if e["kind"] == "alert_firing" and e["source"] == "alertmanager"]
    assert len(firing) == 1  # two notifications of one alert
    # each event's structured facts as the connector read them (an alert's rule and severity)
    assert firing[0]["attrs"]["alertname"] == "HighErrorRate"
    assert firing[0]["attrs"]["severity"]


def test_timeline_csv_and_markdown(tmp_path: Path) -> None:
    bundle = str(write_bundle(tmp_path / "b"))
    code, out, _ = run("timeline", "--bundle", bundle, "--format", "csv")
    assert code == 0 and out.startswith("id,at,source,kind,actor,text")
    code, out, _ = run("timeline", "--bundle", bundle)
    assert code == 0 and "| Time (UTC) |" in out and "outside the incident window" in out


def test_files_are_recognized_by_content_not_name(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    (bundle / "alertmanager" / "firing-1.json").rename(bundle / "whatever.json")
    (bundle / "pagerduty").rename(bundle / "exports")
    code, out, _ = run("timeline", "--bundle", str(bundle), "--format", "json")
    assert code == 0
    assert {e["source"] for e in json.loads(out)} == {"slack", "alertmanager", "pagerduty"}


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ('{"log_entries": [', ("pagerduty/log_entries.json", "truncated JSON", "line 1")),
        ('{"log_entries": [}]}', ("pagerduty/log_entries.json", "malformed JSON")),
        ("", ("pagerduty/log_entries.json", "empty")),
        ('{"hello": "world"}', ("pagerduty/log_entries.json", "not a PagerDuty file")),
    ],
)
def test_bad_files_give_one_clear_line(
    tmp_path: Path, content: str, needles: tuple[str, ...]
) -> None:
    bundle = write_bundle(tmp_path / "b")
    (bundle / "pagerduty" / "log_entries.json").write_text(content)
    code, _, err = run("timeline", "--bundle", str(bundle))
    assert_one_line_error(code, err, *needles)


def test_timestamp_without_zone_is_an_error_unless_timezone_is_set(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    (bundle / "events.jsonl").write_text(
        '{"at": "2024-05-01 16:10:00", "source": "argo-cd", "text": "deployed 4812"}\n'
    )
    code, _, err = run("timeline", "--bundle", str(bundle))
    assert_one_line_error(code, err, "events.jsonl", "no time zone", "timezone")
    with (bundle / "incident.yaml").open("a") as fh:
        fh.write("timezone: Europe/Berlin\n")
    code, out, _ = run("timeline", "--bundle", str(bundle), "--format", "json")
    assert code == 0
    deploy = next(e for e in json.loads(out) if e["source"] == "generic")
    assert deploy["at"] == "2024-05-01T14:10:00Z"


def test_unknown_slack_user_is_an_error_and_lenient_counts_it(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    day = next((bundle / "slack" / "inc-101").glob("2024-05-01.json"))
    messages = json.loads(day.read_text())
    messages[1]["user"] = "U0GHOST"
    day.write_text(json.dumps(messages))
    code, _, err = run("timeline", "--bundle", str(bundle))
    assert_one_line_error(code, err, "U0GHOST", "users.json")
    code, out, _ = run("timeline", "--bundle", str(bundle), "--lenient")
    assert code == 0 and "U0GHOST is not in users.json" in out


def test_empty_bundle_missing_metadata_and_missing_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run("timeline", "--bundle", str(empty))
    assert_one_line_error(code, err, "incident.yaml", "missing")
    (empty / "incident.yaml").write_text("id: INC-1\n")
    code, _, err = run("timeline", "--bundle", str(empty))
    assert_one_line_error(code, err, "no source data")
    code, _, err = run("timeline", "--bundle", str(tmp_path / "nope"))
    assert_one_line_error(code, err, "does not exist")
    (empty / "incident.yaml").write_text("title: no id\n")
    code, _, err = run("timeline", "--bundle", str(empty))
    assert_one_line_error(code, err, "incident.yaml", "id")


def test_missing_token_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    code, _, err = run(
        "harvest", "--incident", "INC-1", "--slack-channel", "inc-1", "--out", str(tmp_path / "o")
    )
    assert code == 2
    assert "No Slack token" in err and "SLACK_BOT_TOKEN" in err and "Traceback" not in err


def test_help_is_fast_to_import() -> None:
    import subprocess
    import sys

    code = "import sys, retro.cli.main; print(','.join(m for m in ('torch', 'langchain_core', 'sentence_transformers', 'openai', 'jira', 'slack_sdk') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
