"""Measure when chat is left out of a draft for blame or an instruction to a model.

`retro.safety.policy.leave_out` drops a message when a policy rule matches, or when the
classifier gives `blame` or `model_instruction` at least `LEAVE_OUT_P`. This prints, on the
labelled corpus's validation split (where the cut is chosen) and held-out split, with a head
trained without either (as `make train` measures), for each cut: the precision and recall of
"left out" against sentences labelled blame or model_instruction, and how many other sentences
it drops.

    python bench/leave_out.py [--cuts 0.3,0.4,0.5,0.6,0.7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from retro.safety import policy
    from retro.understand import train as t
    from retro.understand.labels import labels

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuts", default="0.3,0.4,0.5,0.6,0.7")
    args = parser.parse_args()
    cuts = [float(c) for c in args.cuts.split(",")]
    names = labels()
    rows = t.load_corpus()
    texts = [r["text"] for r in rows]
    y = np.asarray([[1.0 if n in r["labels"] else 0.0 for n in names] for r in rows], np.float32)
    full = np.hstack([t.embed(texts), t.light_features(texts)])
    test = np.asarray([t.is_held_out(r["id"]) for r in rows])
    val = np.asarray([t.is_validation(r["id"]) for r in rows]) & ~test
    head = t.fit(full[~test & ~val], y[~test & ~val])
    jb, jm = names.index("blame"), names.index("model_instruction")
    print(f"{'split':<11}{'cut':>5}{'precision':>11}{'recall':>8}  other sentences dropped")
    for split, mask in (("validation", val), ("held out", test)):
        p = head.predict(full[mask])
        gold = (y[mask][:, jb] > 0) | (y[mask][:, jm] > 0)
        rule = np.asarray([bool(policy.unsafe(x)) for x, m in zip(texts, mask, strict=True) if m])
        for cut in ["rules", *cuts]:
            pred = rule if cut == "rules" else rule | (p[:, jb] >= cut) | (p[:, jm] >= cut)
            tp, fp = int((pred & gold).sum()), int((pred & ~gold).sum())
            print(
                f"{split:<11}{cut!s:>5}{tp / max(tp + fp, 1):>11.2f}{tp / gold.sum():>8.2f}"
                f"  {fp} of {int((~gold).sum())}"
            )


if __name__ == "__main__":
    main()
