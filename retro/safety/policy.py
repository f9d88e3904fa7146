"""Safety policy: what counts as blame, vague wording, or an instruction to a model.

Decided here, in one place, and used by the engines, the draft pipeline and `retro check`, so
that they never disagree. (Secrets and personal data are `retro.safety.redact`'s job.)
"""

from __future__ import annotations

import re

BLAME = re.compile(
    r"\b(should(n'?t)? have|could have|would have|must have|failed to|fault|blame\w*|careless\w*|"
    r"negligen\w*|human error|mistake|screw(ed)? up|mess(ed)? up|stupid|incompetent|sloppy|"
    r"dropped the ball|forgot to|didn'?t bother|idiot|dumb|wtf|his fault|her fault|their fault)\b",
    re.IGNORECASE,
)
VAGUE = re.compile(
    r"\b(improve\w*|look into|looking into|investigate further|be more careful|better|enhance\w*|"
    r"revisit|consider|maybe|somehow|try to|etc)\b",
    re.IGNORECASE,
)
INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,30}\b(previous|prior|above|earlier|all|instructions?|rules)\b"
    r"|system prompt|you are (now )?(an? )?(ai|assistant|language model|chatgpt|llm)"
    r"|\bmark (this|the) (incident|postmortem) as\b|\bnew instructions?\b",
    re.IGNORECASE,
)
