"""The eval harness: scoring functions on hand-made inputs, the gate, and `retro eval`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bundle_factory import SECRET, T0, write_bundle
from click.testing import CliRunner

from evals import harness, scoring
from evals.scoring import Figures, TokenMatcher
from retro.cli.main import cli
from retro.draft.engines.base import DraftInput
from retro.draft.engines.offline import OfflineEngine
from retro.draft.milestones import compute_metrics
from retro.errors import ConfigError
from retro.models import Milestone, Postmortem

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-emulator"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def milestones(**minutes: float) -> dict[str, Milestone]:
    return {n: Milestone(name=n, at=at(m)) for n, m in minutes.items()}  # type: ignore[arg-type]


EXPECTED_YAML = f"""id: INC-101
milestones:
  impact_start: {{at: "2024-05-01T14:00:00Z", tolerance_min: 5}}
  detected: {{at: "2024-05-01T14:01:00Z", tolerance_min: 5}}
  acknowledged: {{at: "2024-05-01T14:03:00Z", tolerance_min: 5}}
  mitigated: {{at: "2024-05-01T14:24:00Z", tolerance_min: 10}}
  resolved: {{at: "2024-05-01T14:40:00Z", tolerance_min: 10}}
root_cause_facts:
  - "pool size | connection pool"
  - "config change | deploy 4812"
contributing_factors:
  - "no canary | canary"
action_items:
  - "Add a canary stage for config changes"
  - "Alert on database connection pool saturation"
forbidden:
  - "Dana Whitfield"
  - "{SECRET}"
"""


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small golden case, in the bundle format, with its expected.yaml."""
    root = tmp_path_factory.mktemp("cases")
    bundle = write_bundle(root / "pool-config")
    (bundle / "expected.yaml").write_text(EXPECTED_YAML, encoding="utf-8")
    return root


# --- phrases and recall ------------------------------------------------------------------------


def test_phrase_alternatives_are_case_insensitive_and_word_bounded() -> None:
    assert scoring.phrase_present("connection pool | pool size", "The POOL SIZE was 5")
    assert scoring.phrase_present("OOM", "pods were OOM-killed")
    assert not scoring.phrase_present("OOM", "the war room")
    assert not scoring.phrase_present("pool", "the spool filled")
    assert scoring.phrase_present("5-minute", "a 5 minute canary")
    assert scoring.phrase_present("replication slot", "two replication slots")
    assert scoring.phrase_present("cdc_warehouse_v1", "slot `cdc_warehouse_v1` inactive")
    assert not scoring.phrase_present("canary", "")


def test_fact_recall_counts_facts_not_alternatives() -> None:
    facts = ["no canary | canary", "memory leak | OOM", "cache"]
    result = scoring.fact_recall(facts, "Canary only ran for 5 min; the pods hit OOM.")
    assert result.value == pytest.approx(2 / 3)
    assert result.missing == ["cache"]
    assert scoring.fact_recall([], "anything").value == 1.0


# --- milestones and time-to-X ------------------------------------------------------------------


def test_milestone_tolerance_edges_and_missing_milestones() -> None:
    expected = {
        "detected": (at(10), 5.0),
        "acknowledged": (at(20), 5.0),
        "mitigated": (at(30), 10.0),
        "resolved": (at(60), 10.0),
    }
    inferred = milestones(detected=15, acknowledged=25 + 1 / 60, mitigated=20)
    inferred["resolved"] = Milestone(name="resolved", rule="no evidence found")
    share, rows = scoring.score_milestones(expected, inferred)
    hits = {r.name: r.hit for r in rows}
    assert hits == {"detected": True, "acknowledged": False, "mitigated": True, "resolved": False}
    assert share == 0.5
    assert scoring.score_milestones(expected, {})[0] == 0.0


def test_metric_errors_in_minutes_only_where_both_exist() -> None:
    want = compute_metrics(milestones(impact_start=0, detected=10, mitigated=30))
    got = compute_metrics(milestones(impact_start=0, detected=4, acknowledged=6, mitigated=45))
    errors = scoring.metric_errors(want, got)
    assert errors["time_to_detect_s"] == 6.0
    assert errors["time_to_mitigate_s"] == 15.0
    assert errors["time_to_acknowledge_s"] is None and errors["time_to_resolve_s"] is None


# --- action items ------------------------------------------------------------------------------


def test_action_matching_is_one_to_one_with_recall_and_precision() -> None:
    expected = ["Add a canary stage for config changes", "Alert on disk usage of data volumes"]
    drafted = [
        "Roll out config changes through a canary stage",
        "Add a canary stage to config deploys",
        "Write a runbook for failover",
    ]
    result = scoring.match_actions(expected, drafted, TokenMatcher())
    assert len(result.pairs) == 1 and result.pairs[0][0] == expected[0]
    assert result.recall == 0.5 and result.precision == pytest.approx(1 / 3)
    assert result.unmatched_expected == [expected[1]]
    empty = scoring.match_actions(expected, [], TokenMatcher())
    assert empty.recall == 0.0 and empty.precision == 0.0


CALIBRATION_SAME = [
    (
        "Add a canary stage for config changes",
        "Deploy configuration changes through a canary first",
    ),
    (
        "Alert on disk usage above 80% on database hosts",
        "Add a disk-space alert for the DB servers",
    ),
    ("Document the rollback procedure in the runbook", "Add the rollback command to the runbook"),
    ("Test restores from backup every month", "Run a monthly backup restore drill"),
]
CALIBRATION_DIFFERENT = [
    ("Add a canary stage for config changes", "Alert on disk usage above 80% on database hosts"),
    ("Alert on memory growth in pods", "Alert on disk usage above 80% on database hosts"),
    ("Rotate the leaked admin credentials", "Add a network partition test to the game day"),
    ("Review the paging and escalation policy", "Bound the cache size with an LRU"),
]


@pytest.fixture(scope="module")
def embedding() -> scoring.EmbeddingMatcher:
    try:
        matcher, _ = scoring.load_matcher("embedding")
    except Exception as exc:  # the model is an optional extra
        pytest.skip(f"embedder unavailable: {exc}")
    assert isinstance(matcher, scoring.EmbeddingMatcher)
    return matcher


def test_embedding_threshold_separates_paraphrases_from_different_actions(
    embedding: scoring.EmbeddingMatcher,
) -> None:
    for left, right in CALIBRATION_SAME:
        assert embedding.similarity([left], [right])[0][0] >= embedding.action_threshold
    for left, right in CALIBRATION_DIFFERENT:
        assert embedding.similarity([left], [right])[0][0] < embedding.action_threshold - 0.1


def test_unusable_embedder_falls_back_to_tokens_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    import retro.index.embeddings

    def broken(*_: Any, **__: Any) -> None:
        raise ConfigError("The packaged embedding model is not installed")

    monkeypatch.setattr(retro.index.embeddings, "MiniLMEmbedder", broken)
    matcher, note = scoring.load_matcher("auto")
    assert isinstance(matcher, TokenMatcher)
    assert note.startswith("FALLBACK") and "not installed" in note
    with pytest.raises(ConfigError):
        scoring.load_matcher("embedding")


# --- unsupported entities ----------------------------------------------------------------------


def figures() -> Figures:
    ms = milestones(impact_start=0, detected=2, mitigated=117)
    return Figures.build(ms, compute_metrics(ms), [at(5)], counts=[33])


SOURCE = "checkout-api pool size 5 of 50 on db-1.acme.example; deploy 4812; v5.30.2 rolled back"


def found(text: str, **kw: Any) -> set[tuple[str, str]]:
    ents = scoring.entities(text, figures(), SOURCE, scoring.source_numbers(SOURCE), **kw)
    return {(e.kind, e.text) for e in ents}


def test_generator_times_durations_and_counts_are_not_unsupported() -> None:
    text = (
        "On 2024-05-01, checkout-api was impaired from 14:00 UTC until mitigation at 15:57 UTC "
        "(1h 57m). Time to detect was 2m. 33 alerts fired. A change deployed at 14:05 UTC. "
        "The database engineer 2 wrote: “pool size 5 of 50 after deploy 4812”."
    )
    assert found(text) == set()


def test_invented_hosts_services_numbers_and_names_are_unsupported() -> None:
    text = (
        "Traffic from db-7.acme.example and auth-gateway failed; 412 requests were lost in 45m; "
        "Jonathan Pemberton restarted v5.31.0 at 09:13 UTC."
    )
    assert found(text) == {
        ("host", "db-7.acme.example"),
        ("service", "auth-gateway"),
        ("number", "412"),
        ("number", "45m"),
        ("number", "v5.31.0"),
        ("number", "09:13"),
        ("person", "Jonathan Pemberton"),
    }


def test_known_entities_english_compounds_and_action_targets_pass() -> None:
    text = "The on-call saw customer-facing errors, e.g. on checkout-api and db-1.acme.example."
    assert found(text) == set()
    target = "A test page is acknowledged within 15 minutes on checkout-api"
    assert found(target, check_figures=False) == set()
    assert ("number", "15 minutes") in found(target)
    # retro's redaction marks stand for removed text; they are not entities of the draft
    assert found("curl -H 'Bearer [REDACTED:grafana_token]' on checkout-api") == set()


# --- citation support --------------------------------------------------------------------------


def support(claim: str, rows: list[str], **kw: Any) -> scoring.Support:
    return scoring.claim_support(claim, rows, figures=figures(), **kw)


def test_a_quote_of_the_cited_row_is_supported() -> None:
    row = "database engineer message slack Checkout DB pool is saturated: 5 of 5 connections in use"
    claim = (
        "The database engineer wrote: “Checkout DB pool is saturated: 5 of 5 connections in use.”"
    )
    assert support(claim, [row]).supported


def test_a_claim_the_row_does_not_state_is_not_supported() -> None:
    row = "on-call SRE message slack Rolling back deploy 4812 now"
    result = support("The primary database ran out of disk space.", [row])
    assert not result.supported and result.overlap < scoring.LEXICAL_SUPPORT_THRESHOLD


def test_a_wrong_figure_is_never_supported_even_with_matching_words() -> None:
    row = "on-call SRE message slack Rolling back deploy 4812 now"
    result = support("The on-call SRE was rolling back deploy 4813 now.", [row])
    assert not result.supported and result.ungrounded == ["4813"]


def test_milestone_claims_are_supported_by_milestone_evidence_only() -> None:
    row = "alertmanager alert firing HighErrorRate checkout-api 5xx ratio above 5%"
    claim = "Time to mitigate was 1h 57m from impact start."
    assert support(claim, [row], from_milestones=True).supported
    assert not support(claim, [row], from_milestones=False).supported
    assert not support("The database crashed at 14:00 UTC.", [row], from_milestones=True).supported
    assert not support("Time to mitigate was 3h 10m.", [row], from_milestones=True).supported


def test_embedding_similarity_can_support_a_paraphrase() -> None:
    row = "on-call SRE message slack Rolling back deploy 4812 now"
    claim = "Responders reverted the release."
    assert not support(claim, [row], similarity=0.4, embed_threshold=0.6).supported
    assert support(claim, [row], similarity=0.7, embed_threshold=0.6).reason == "embedding"


# --- the gate ----------------------------------------------------------------------------------


def test_gate_checks_min_and_max_and_rejects_unknown_metrics() -> None:
    agg = {
        "root_cause_recall": 0.5,
        "blameless_violations": 2,
        "ttx_mae_min": None,
        "action_recall": 0.08,
    }
    limits = {"min": {"root_cause_recall": 0.5}, "max": {"blameless_violations": 1}}
    assert harness.gate(agg, limits, "embedding:x") == [
        "blameless_violations = 2 is above the max of 1"
    ]
    assert harness.gate(agg, {"max": {"ttx_mae_min": 5}}, "embedding:x")[0].startswith(
        "ttx_mae_min could not be measured"
    )
    token = {"min": {"action_recall": 0.05}, "token_matcher": {"min": {"action_recall": 0.1}}}
    assert harness.gate(agg, token, "embedding:x") == [] and harness.gate(agg, token, "token") != []
    with pytest.raises(ConfigError, match="unknown metric"):
        harness.gate(agg, {"min": {"root_cause_recal": 0.1}}, "token")


class DegradedEngine(OfflineEngine):
    """A clearly worse draft: no root cause, no trigger, no action items."""

    def draft(self, data: DraftInput, **kw: Any) -> Postmortem:
        pm = super().draft(data, **kw)
        pm.root_cause, pm.trigger, pm.action_items = [], [], []
        pm.summary = pm.summary[:1]
        return pm


@pytest.mark.skipif(not (harness.CASES_DIR).is_dir(), reason="no golden cases checked out")
def test_the_real_thresholds_fail_a_degraded_engine_and_pass_the_offline_engine() -> None:
    cases = harness.discover(harness.CASES_DIR)
    limits = harness.load_thresholds(harness.THRESHOLDS)
    matcher = TokenMatcher()  # fast and deterministic; thresholds.yaml has its own floors for it
    report = harness.run(
        cases,
        {"offline": (OfflineEngine(), None), "degraded": (DegradedEngine(), None)},
        matcher,
        "test",
        lambda _: None,
    )
    offline = harness.gate(report["engines"]["offline"]["aggregate"], limits, matcher.name)
    degraded = harness.gate(report["engines"]["degraded"]["aggregate"], limits, matcher.name)
    assert offline == []
    failed = {f.split(" ")[0] for f in degraded}
    assert {"root_cause_recall", "action_recall", "action_precision"} <= failed


# --- scoring a real draft, and the CLI ---------------------------------------------------------


def test_small_case_scores_as_expected(cases: Path) -> None:
    case = harness.discover(cases)[0]
    result = harness.run_case(case, OfflineEngine(), TokenMatcher())
    assert result["error"] is None
    assert result["milestones"]["accuracy"] == 1.0
    assert result["root_cause"]["value"] == 1.0
    assert result["citations"]["resolution"] == 1.0
    assert result["blameless"]["forbidden"] == []
    drafted = [p["drafted"] for p in result["actions"]["pairs"]]
    assert any("canary" in d.casefold() for d in drafted)
    assert result["words"] > 50 and result["seconds"] > 0


def test_a_case_that_fails_to_load_is_reported_not_raised(tmp_path: Path) -> None:
    bundle = tmp_path / "broken"
    bundle.mkdir()
    (bundle / "incident.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    (bundle / "expected.yaml").write_text("id: X\n", encoding="utf-8")
    result = harness.run_case(harness.discover(tmp_path)[0], OfflineEngine(), TokenMatcher())
    assert result["error"]
    assert harness.aggregate([result])["errors"] == 1


def test_bad_expected_yaml_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "expected.yaml"
    path.write_text("id: X\nmilestones:\n  detected: {at: '2024-05-01 14:00'}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="milestones.detected"):
        harness.load_expected(path)


def test_retro_eval_help() -> None:
    result = CliRunner().invoke(cli, ["eval", "--help"])
    assert result.exit_code == 0
    assert "--gate" in result.output and "retro eval" in result.output


def test_python_m_evals_help() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "evals", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and "python -m evals" in run.stdout


def test_retro_eval_writes_reports_and_prints_json(cases: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["eval", "--cases", str(cases), "--out", str(out), "--matcher", "token", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["matcher"] == "token-overlap"
    assert list(data["engines"]) == ["offline"]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "pool-config" in md and "| Milestones |" in md
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert saved["engines"]["offline"]["cases"][0]["slug"] == "pool-config"


def test_retro_eval_gate_exits_1_on_a_miss_and_2_on_a_bad_threshold(
    cases: Path, tmp_path: Path
) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text("min:\n  action_recall: 1.01\nmax:\n  errors: 0\n", encoding="utf-8")
    base = [
        "eval",
        "--cases",
        str(cases),
        "--out",
        str(tmp_path / "o"),
        "--matcher",
        "token",
        "--gate",
    ]
    result = CliRunner().invoke(cli, [*base, "--thresholds", str(strict)])
    assert result.exit_code == 1
    assert "GATE FAIL: action_recall" in result.stderr
    strict.write_text("min:\n  nonsense: 1\n", encoding="utf-8")
    result = CliRunner().invoke(cli, [*base, "--thresholds", str(strict)])
    assert result.exit_code == 2 and "unknown metric" in result.stderr


# --- the openai engine side by side ------------------------------------------------------------


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    from tests.emulators.openai import OpenAIEmulator

    monkeypatch.setenv("RETRO_CACHE_DIR", str(tmp_path / "cache"))
    with OpenAIEmulator(api_key=KEY) as server:
        server.responder = _scripted_draft
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        yield server


def _scripted_draft(body: dict[str, Any]) -> dict[str, Any]:
    text = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
    ids = re.findall(r'"id":"(E[0-9a-f]+)"', text) or ["E000000"]
    return {
        "summary": [
            {"text": "Checkout returned errors after the pool config change.", "cites": ids[:2]}
        ],
        "root_cause": [
            {"text": "The config change lowered the pool size from 50 to 5.", "cites": ids[:1]}
        ],
        "action_items": [
            {
                "title": "Add a canary stage to config deploys",
                "type": "prevent",
                "priority": "P1",
                "owner": "the checkout team",
                "end_state": "Config deploys go to 5% of pods first, shown by a test deploy",
                "origin": "stated",
                "cites": ids[-1:],
            }
        ],
        "open_questions": [],
    }


def test_openai_is_scored_beside_offline_and_never_gated(
    openai_server: Any, cases: Path, tmp_path: Path
) -> None:
    strict = tmp_path / "t.yaml"
    strict.write_text("max:\n  errors: 0\n", encoding="utf-8")
    args = ["eval", "--cases", str(cases), "--out", str(tmp_path / "o"), "--matcher", "token"]
    result = CliRunner().invoke(cli, [*args, "--gate", "--thresholds", str(strict), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data["engines"]) == ["offline", "openai"]
    assert list(data["gate"]) == ["offline"]
    openai_case = data["engines"]["openai"]["cases"][0]
    assert openai_case["error"] is None, openai_case["error"]
    assert openai_case["root_cause"]["value"] >= 0.5
    md = (tmp_path / "o" / "report.md").read_text(encoding="utf-8")
    assert "## Engines side by side" in md


HELDOUT = harness.CASES_DIR.parent / "heldout"


@pytest.mark.skipif(not HELDOUT.is_dir(), reason="no held-out cases checked out")
@pytest.mark.parametrize(
    "case", harness.discover(HELDOUT) if HELDOUT.is_dir() else [], ids=lambda c: c.slug
)
def test_held_out_cases_draft_cleanly(case: harness.Case) -> None:
    """Quality on held-out cases is reported, not gated; leaking a name or a secret is a bug."""
    result = harness.run_case(case, OfflineEngine(), TokenMatcher())
    assert result["error"] is None
    assert result["blameless"]["violations"] == 0, result["blameless"]
    assert result["citations"]["resolution"] == 1.0


def test_a_forbidden_name_inside_a_word_still_counts_and_is_marked() -> None:
    from types import SimpleNamespace

    from evals.harness import score_blameless

    result = SimpleNamespace(timeline=SimpleNamespace(people={}))
    out = score_blameless("The rollback went out and Ines reviewed it.", result, ["Wen", "Ines"])
    assert out["violations"] == 2
    assert out["forbidden_only_inside_words"] == ["Wen"]
