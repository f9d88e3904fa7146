"""Repeat detection: choose is_repeat's threshold on labelled pairs, report it on pairs not used.

Run `python -m evals.repeats` from the repository root. It reads ../shared/corpus at run time (the
corpus has no licence for redistribution: nothing of it is copied into this repository) and skips
cleanly when that folder is absent.

Incidents and their texts. Every incident of incident_crossref_labels.json that has a text:
- the *description* view: its danluu/post-mortems description (190 incidents), indexed as
  {id, text}, without the company name;
- the *structured* view: the BYU Incident Database fields (43 incidents) as a postmortem would
  hold them: summary (without the class label in brackets at its end), root cause (root cause +
  how it happened) and impact (failure + impact); reference marks like "[12, 13]" removed.
Both go through the same path as `retro index add` (corpus_item -> chunks -> MiniLM -> profile).

What a repeat is, from labels people gave (never indexed). A repeat incident is the same kind of
incident coming back *at the same organisation*, and a report only ever compares one team's
incidents, so pairs are formed within an organisation (the crossref `company`), within a view:
- "same kind": the two share a label of a family in which both are labelled; families are the
  danluu README section (not "uncategorized") and the IDB summary class;
- "different kind": labelled in a common family, no shared label; other pairs are not used.
The icco categories (regex + LLM, not people; "security" on a datacenter power loss) are not used.

Split. Incidents are cut into two halves by a hash of their URL key (both views of an incident fall
in the same half); pairs are formed inside a half, so no incident of a held-out pair was seen while
choosing. (Cutting by organisation instead left one company in each half: Cloudflare made 47 of 65
calibration pairs, Google 108 of 114 held-out ones.) The threshold is chosen on the calibration
half by a rule fixed beforehand: the lowest threshold (0.01 steps) at which precision reaches
TARGET_PRECISION over at least MIN_PAIRS pairs. Precision and recall are reported on the held-out
half, with 95% bootstrap intervals that resample incidents.

Also printed at the same threshold, as context: pairs across organisations (same-kind labels), and
how many incidents written up twice (a danluu description and an IDB record of the same incident)
are found as repeats of themselves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retro.index.corpus import corpus_item
from retro.index.repeats import REPEAT_THRESHOLD, profiles_for

if TYPE_CHECKING:
    import numpy as np

    from retro.index.embeddings import Embedder

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TARGET_PRECISION = 0.8
MIN_PAIRS = 10
GRID = [round(0.30 + 0.01 * i, 2) for i in range(61)]  # 0.30 .. 0.90
BOOTSTRAP = 2000
VIEWS = ("description", "structured")
_REFS = re.compile(r"\s*\[[\d,\s-]+\]")
_CLASS = re.compile(r"\s*\([^()]*\)\s*$")


@dataclass
class Incident:
    key: str
    org: str
    labels: dict[str, set[str]]  # family -> labels
    views: dict[str, dict[str, str]] = field(default_factory=dict)  # view -> corpus record

    @property
    def half(self) -> str:
        return half_of(self.key)


def half_of(name: str) -> str:
    """ "calibration" or "held-out", by a stable hash of the name."""
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return "calibration" if digest % 2 == 0 else "held-out"


def _idb_record(entry: dict[str, Any]) -> dict[str, str]:
    def clean(*keys: str) -> str:
        return " ".join(_REFS.sub("", str(entry.get(k) or "")).strip() for k in keys).strip()

    return {
        "id": f"idb-{entry['id']}",
        "title": _CLASS.sub("", clean("summary")),
        "root_cause": clean("root cause", "how it happened"),
        "impact": clean("failure", "impact"),
    }


def load_incidents(shared: Path) -> list[Incident]:
    """Every crossref incident with a text, its organisation, its label families and views."""
    corpus = shared / "corpus"
    crossref = json.loads((corpus / "incident_crossref_labels.json").read_text())["incidents"]
    danluu = {
        e["id"]: e for e in json.loads((corpus / "danluu_postmortems.json").read_text())["entries"]
    }
    idb = {
        e["id"]: e
        for e in json.loads((corpus / "byu_idb_structured_incidents.json").read_text())["incidents"]
    }
    out = []
    for inc in crossref:
        lab = inc["labels"]
        families: dict[str, set[str]] = {}
        if lab.get("danluu_category") and lab["danluu_category"] != "uncategorized":
            families["danluu"] = {lab["danluu_category"]}
        if lab.get("idb_summary_class"):
            families["idb"] = {lab["idb_summary_class"]}
        item = Incident(inc["url_key"], str(inc.get("company") or "").strip().lower(), families)
        if inc.get("danluu_id") in danluu:
            text = danluu[inc["danluu_id"]]["description"]
            item.views["description"] = {"id": inc["danluu_id"], "text": text}
        if inc.get("idb_id") in idb:
            item.views["structured"] = _idb_record(idb[inc["idb_id"]])
        if item.views:
            out.append(item)
    return out


def same_kind(a: Incident, b: Incident) -> bool | None:
    """True (same kind), False (comparable, different kinds) or None (not comparable)."""
    common = set(a.labels) & set(b.labels)
    if not common:
        return None
    return any(a.labels[f] & b.labels[f] for f in common)


@dataclass
class Pairs:
    """Scored, labelled pairs of incidents (their indexes in the incident list)."""

    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    label: list[bool] = field(default_factory=list)

    def add(self, i: int, j: int, score: float, label: bool) -> None:
        self.left.append(i)
        self.right.append(j)
        self.score.append(score)
        self.label.append(label)


Vectors = dict[tuple[int, str], "np.ndarray"]


def build_pairs(incidents: list[Incident], vectors: Vectors, half: str | None, scope: str) -> Pairs:
    """Labelled pairs inside one half (None: all), within each view.

    scope "organisation": both incidents of one organisation; "across": of two organisations.
    """
    pairs = Pairs()
    members = [
        i for i, inc in enumerate(incidents) if inc.org and (half is None or inc.half == half)
    ]
    for view in VIEWS:
        have = [i for i in members if (i, view) in vectors]
        for n, i in enumerate(have):
            for j in have[n + 1 :]:
                a, b = incidents[i], incidents[j]
                if (a.org == b.org) != (scope == "organisation"):
                    continue
                verdict = same_kind(a, b)
                if verdict is not None:
                    score = float(vectors[(i, view)] @ vectors[(j, view)])
                    pairs.add(i, j, score, verdict)
    return pairs


def precision_recall(
    pairs: Pairs, threshold: float, weights: np.ndarray | None = None
) -> tuple[float, float, float]:
    """(precision, recall, pairs flagged) at a threshold; weights count copies of pairs."""
    import numpy as np

    score = np.asarray(pairs.score)
    label = np.asarray(pairs.label, dtype=bool)
    w = np.ones(len(score)) if weights is None else weights
    flagged = score >= threshold
    tp = float((w * (flagged & label)).sum())
    predicted = float((w * flagged).sum())
    positives = float((w * label).sum())
    precision = tp / predicted if predicted else float("nan")
    recall = tp / positives if positives else float("nan")
    return precision, recall, predicted


def choose_threshold(pairs: Pairs) -> float | None:
    """The lowest grid threshold whose precision reaches TARGET_PRECISION over MIN_PAIRS pairs."""
    for t in GRID:
        p, _, n = precision_recall(pairs, t)
        if n >= MIN_PAIRS and p >= TARGET_PRECISION:
            return t
    return None


def bootstrap(
    pairs: Pairs, threshold: float, rounds: int = BOOTSTRAP, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """95% intervals of precision and recall, resampling incidents with replacement.

    A pair counts as often as both its incidents are drawn, so pairs that share an incident
    move together, as they should: they are not independent.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    members = sorted(set(pairs.left) | set(pairs.right))
    index = {m: n for n, m in enumerate(members)}
    left = np.asarray([index[i] for i in pairs.left])
    right = np.asarray([index[j] for j in pairs.right])
    ps, rs = [], []
    for _ in range(rounds):
        counts = rng.multinomial(len(members), np.full(len(members), 1 / len(members)))
        weights = (counts[left] * counts[right]).astype(float)
        p, r, _ = precision_recall(pairs, threshold, weights)
        ps.append(p)
        rs.append(r)

    def interval(values: list[float]) -> tuple[float, float]:
        arr = np.asarray(values)
        arr = arr[~np.isnan(arr)]
        if not len(arr):
            return (float("nan"), float("nan"))
        return float(np.percentile(arr, 2.5)), float(np.percentile(arr, 97.5))

    return {"precision": interval(ps), "recall": interval(rs)}


def auc(pairs: Pairs) -> float:
    """Probability that a same-kind pair scores above a different-kind one (ties count half)."""
    import numpy as np

    score, label = np.asarray(pairs.score), np.asarray(pairs.label, dtype=bool)
    pos, neg = score[label], score[~label]
    if not len(pos) or not len(neg):
        return float("nan")
    both = np.concatenate([pos, neg])
    order = np.argsort(both, kind="stable")
    ranks = np.empty(len(both))
    ranks[order] = np.arange(1, len(both) + 1)
    for value in np.unique(both):  # average ranks of ties
        tied = both == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def embed_views(incidents: list[Incident], embedder: Embedder) -> Vectors:
    """Each view's profile, through the same path as `retro index add`."""
    path = Path("shared-corpus")
    keys, items = [], []
    for i, inc in enumerate(incidents):
        for view, record in inc.views.items():
            keys.append((i, view))
            items.append(corpus_item(record, path, f"{view}:{record['id']}"))
    profiles = profiles_for(items, embedder=embedder)
    return {k: p.vector for k, p in zip(keys, profiles, strict=True)}


@dataclass
class Report:
    threshold: float | None
    constant: float
    rows: list[dict[str, Any]]
    twice: dict[str, float]


def _row(name: str, pairs: Pairs, threshold: float, with_ci: bool) -> dict[str, Any]:
    p, r, n = precision_recall(pairs, threshold)
    ci = bootstrap(pairs, threshold) if with_ci else None
    return {
        "pairs": name,
        "n": len(pairs.score),
        "same_kind": sum(pairs.label),
        "auc": auc(pairs),
        "flagged": int(n),
        "precision": p,
        "recall": r,
        "precision_ci": ci["precision"] if ci else None,
        "recall_ci": ci["recall"] if ci else None,
    }


def evaluate(incidents: list[Incident], vectors: Vectors) -> Report:
    calibration = build_pairs(incidents, vectors, "calibration", "organisation")
    threshold = choose_threshold(calibration)
    used = threshold if threshold is not None else REPEAT_THRESHOLD
    rows = [
        _row("calibration: same organisation (chooses it)", calibration, used, False),
        _row(
            "held-out: same organisation",
            build_pairs(incidents, vectors, "held-out", "organisation"),
            used,
            True,
        ),
        _row(
            "all: across organisations (context)",
            build_pairs(incidents, vectors, None, "across"),
            used,
            False,
        ),
    ]
    twice = [
        float(vectors[(i, "description")] @ vectors[(i, "structured")])
        for i in range(len(incidents))
        if (i, "description") in vectors and (i, "structured") in vectors
    ]
    return Report(
        threshold,
        REPEAT_THRESHOLD,
        rows,
        {
            "incidents": len(twice),
            "found": sum(1 for s in twice if s >= used),
            "median_cosine": _median(twice),
        },
    )


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values) if values else float("nan")


def _ci(ci: tuple[float, float] | None) -> str:
    return f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""


def table(report: Report) -> str:
    lines = [
        "| pairs | n | same kind | AUC | flagged | precision | recall |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in report.rows:
        share = r["same_kind"] / max(r["n"], 1)
        lines.append(
            f"| {r['pairs']} | {r['n']} | {r['same_kind']} ({share:.0%}) | {r['auc']:.3f} | "
            f"{r['flagged']} | {r['precision']:.2f}{_ci(r['precision_ci'])} | "
            f"{r['recall']:.2f}{_ci(r['recall_ci'])} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.repeats", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared/ folder")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--drafts",
        action="store_true",
        help="also score the offline drafts of the sample and evals/cases against each other",
    )
    args = parser.parse_args(argv)
    if not (args.shared / "corpus" / "incident_crossref_labels.json").is_file():
        print(f"skipped: {args.shared / 'corpus'} not found", file=sys.stderr)
        return 0
    from retro.index.embeddings import MiniLMEmbedder

    incidents = load_incidents(args.shared)
    report = evaluate(incidents, embed_views(incidents, MiniLMEmbedder()))
    if args.json:
        print(json.dumps(vars(report), indent=2))
        return 0
    chosen = "none reaches the target" if report.threshold is None else f"{report.threshold:.2f}"
    print(
        f"threshold chosen on calibration pairs: {chosen} (rule: lowest with precision >= "
        f"{TARGET_PRECISION} over >= {MIN_PAIRS} pairs); REPEAT_THRESHOLD in code: "
        f"{report.constant:.2f}\n"
    )
    print(table(report))
    t = report.twice
    print(
        f"\nwritten up twice (a danluu description and an IDB record of one incident): "
        f"{t['found']} of {t['incidents']} found as repeats; median cosine {t['median_cosine']:.2f}"
    )
    if report.threshold is not None and abs(report.threshold - report.constant) > 1e-9:
        print("warning: REPEAT_THRESHOLD is not the chosen threshold", file=sys.stderr)
    if args.drafts:
        print("\n" + drafts_table(MiniLMEmbedder()))
    return 0


def drafts_table(embedder: Embedder) -> str:
    """Profile cosines between the offline drafts of different incidents (the sample and the
    eval cases): none of them repeats another, so every pair at the threshold is a false repeat."""
    import numpy as np

    from retro.cli.draft import sample_bundle
    from retro.draft.engines.offline import OfflineEngine
    from retro.draft.pipeline import generate
    from retro.index.content import postmortem_chunks, postmortem_record

    cases = Path(__file__).resolve().parent / "cases"
    bundles = [
        sample_bundle(),
        *sorted(p for p in cases.iterdir() if (p / "incident.yaml").is_file()),
    ]
    pms = [generate(bundle=b, engine=OfflineEngine()).postmortem for b in bundles]
    items = [(postmortem_record(pm), postmortem_chunks(pm)) for pm in pms]
    profiles = profiles_for(items, embedder=embedder)
    sims = np.stack([p.vector for p in profiles]) @ np.stack([p.vector for p in profiles]).T
    pairs = [(float(sims[i, j]), i, j) for i in range(len(pms)) for j in range(i + 1, len(pms))]
    over = sorted((p for p in pairs if p[0] >= REPEAT_THRESHOLD), reverse=True)
    lines = [
        f"drafts of {len(pms)} different incidents (offline engine): {len(pairs)} pairs, "
        f"mean cosine {np.mean([p[0] for p in pairs]):.2f}, max {max(p[0] for p in pairs):.2f}; "
        f"{len(over)} at or above the threshold (false repeats):"
    ]
    lines += [f"  {c:.2f}  {pms[i].title}  |  {pms[j].title}" for c, i, j in over]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
