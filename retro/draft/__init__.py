"""Stages 3-8 of the pipeline: a timeline becomes a checked, blameless Markdown draft, and back.

- `milestones.py`: impact start, detected, acknowledged, declared, mitigated, resolved; metrics.
- `evidence.py`: the rows an engine reads: roles instead of names, secrets redacted.
- `engines/`: the offline and LLM engines that write claims citing those rows.
- `pipeline.py`: `generate`, the stages wired together, keeping a person's edits on re-runs.
- `render.py`: the Postmortem as Markdown; `review.py`: Markdown back into a Postmortem.
- `lint.py`: `retro check`; `prompts.py`: the LLM prompt templates.
"""
