"""Measure the claim check of the LLM engine (retro/understand/data/sections.v1.yaml).

A model's claim stands on its cited chat only if a cited sentence carries one of the section's
labels at `relaxed` times the label's threshold, and at least as strongly (relative to the
thresholds) as any uninformative label such as off_topic. This prints, per section and per factor, on
the labelled corpus's held-out split (a head trained without it, thresholds chosen on the
validation split, exactly as `make train` measures; `--split validation` prints the same on the
validation split, where the factor is chosen):

- support: the share of sentences labelled with one of the section's labels that pass (a
  claim citing such a sentence is kept; 1 - support is the rate of wrongly doubted citations);
- chatter passes: the share of off-topic-only sentences that pass (should be near 0).

    python bench/grounding.py [--factors 1,0.5,0.25]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", default="1,0.75,0.5,0.35,0.25")
    parser.add_argument(
        "--split",
        choices=["held-out", "validation"],
        default="held-out",
        help="validation: where the factor is chosen (head trained on the rest)",
    )
    args = parser.parse_args()
    factors = [float(f) for f in args.factors.split(",")]

    from retro.understand.labels import labels, section_support
    from retro.understand.model import light_features
    from retro.understand.train import (
        choose_thresholds,
        embed,
        fit,
        is_held_out,
        is_validation,
        load_corpus,
    )

    names = labels()
    rows = load_corpus()
    texts = [r["text"] for r in rows]
    y = np.asarray([[1.0 if n in r["labels"] else 0.0 for n in names] for r in rows], np.float32)
    x = np.hstack([embed(texts), light_features(texts)])
    test = np.asarray([is_held_out(r["id"]) for r in rows])
    val = np.asarray([is_validation(r["id"]) for r in rows]) & ~test
    tuned = fit(x[~test & ~val], y[~test & ~val])
    cuts = choose_thresholds(tuned.predict(x[val]), y[val])
    if args.split == "validation":
        probs, gold = tuned.predict(x[val]), y[val] > 0
    else:
        probs, gold = fit(x[~test], y[~test]).predict(x[test]), y[test] > 0
    ratio = probs / cuts  # each label's probability as a share of its threshold

    support = section_support()
    col = {n: j for j, n in enumerate(names)}
    only_chatter = np.asarray(
        [
            g.any() and all(names[j] in support.uninformative for j in np.flatnonzero(g))
            for g in gold
        ]
    )
    print(f"{args.split} split: {len(gold)} sentences ({int(only_chatter.sum())} off-topic only)")
    header = "section".ljust(22) + "".join(f"support@{f:<5} chatter@{f:<5}" for f in factors)
    print(header)
    off = ratio[:, [col[n] for n in sorted(support.uninformative)]].max(axis=1)
    for section, wanted in support.sections.items():
        js = [col[n] for n in sorted(wanted)]
        positive = gold[:, js].any(axis=1)
        best = ratio[:, js].max(axis=1)
        cells = []
        for f in factors:
            passed = (best >= f) & (best >= off)
            rec = passed[positive].mean() if positive.any() else float("nan")
            fp = passed[only_chatter].mean() if only_chatter.any() else float("nan")
            cells.append(f"{rec:>12.0%}  {fp:>12.0%}  ")
        print(f"{section:<22}" + "".join(cells) + f" (n={int(positive.sum())})")


if __name__ == "__main__":
    main()
