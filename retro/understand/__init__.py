"""Sentence understanding: every sentence of the evidence gets a score per label.

The one layer that milestones, both engines, `retro check` and the draft validator read, so
that none of them carries its own phrase lists.

- `data/labels.v1.yaml`: the label set (cause, trigger, mitigation, recovery, follow_up, …).
- `data/cues.v1.yaml`: rules kept as data: cue patterns with a label, a weight and an example
  each, validated when loaded (`cues.py`).
- `data/classifier.v1.npz`: a logistic-regression classifier over the all-MiniLM-L6-v2
  sentence vector, the cue scores and a few surface features (`model.py`); rebuilt
  reproducibly from training/sentences/ by `make train` (`train.py`).
- `layer.py`: `Understanding`, which splits, scores and caches, embedding only candidate
  sentences so that big incidents stay fast.
"""
