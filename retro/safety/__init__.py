"""Safety: nothing leaks, nothing steers the draft.

- `redact.py` and `patterns.py`: secrets and personal data are replaced by `[REDACTED:kind]`
  before any text leaves the machine or reaches a draft.
- `policy.py`: what counts as blame, vague wording, or an instruction to a model, decided once
  for the engines, the draft pipeline and `retro check`.
"""
