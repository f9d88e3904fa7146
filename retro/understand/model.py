"""The learned scorer: logistic regression per label over sentence features, in numpy.

Features of a sentence, in this order:
1. the all-MiniLM-L6-v2 vector (384 numbers; the "full" head only);
2. the cue scores, one per label (retro.understand.cues);
3. surface features: ends with "?", log length, has a digit, has a clock time, starts with
   "we"/"i", is all lower case.

Two heads are trained together (`make train`): "full" for sentences that were embedded, and
"light" (cues and surface only) for the rest, so that a huge incident can skip embedding
sentences that cannot matter. Both are one weight matrix and a bias: predict = softmax(XW + b).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from io import BytesIO
from typing import TYPE_CHECKING

from retro.errors import ConfigError
from retro.understand.cues import Cue, scores
from retro.understand.labels import DATA, labels

if TYPE_CHECKING:
    import numpy as np

WEIGHTS_FILE = "classifier.v1.npz"
_CLOCK = re.compile(r"\b([01]?\d|2[0-3])[:.h][0-5]\d\b")
_FIRST_PERSON = re.compile(r"^\s*(we|i|i'm|i'll|we're|we'll|our|my)\b", re.IGNORECASE)
SURFACE = ("question_mark", "log_length", "digit", "clock", "first_person", "lower_case")


def surface(text: str) -> list[float]:
    words = len(text.split())
    return [
        1.0 if text.rstrip().endswith("?") else 0.0,
        math.log1p(words) / 4.0,
        1.0 if any(c.isdigit() for c in text) else 0.0,
        1.0 if _CLOCK.search(text) else 0.0,
        1.0 if _FIRST_PERSON.search(text) else 0.0,
        1.0 if text == text.lower() else 0.0,
    ]


def light_features(texts: list[str], table: tuple[Cue, ...] | None = None) -> np.ndarray:
    """Cue scores and surface features, one row per text."""
    import numpy as np

    names = labels()
    rows = []
    for text in texts:
        found = scores(text, table)
        rows.append([found.get(label, 0.0) for label in names] + surface(text))
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), len(names) + len(SURFACE))


@dataclass
class Head:
    """One multinomial logistic-regression head: weights (features x labels) and biases.

    The labels compete (softmax): a sentence's probabilities sum to 1, so "error rate back to
    baseline" cannot be both a recovery and a setback with high confidence. A sentence that
    truly carries two meanings gets its mass split between them (it was trained that way).
    """

    weights: np.ndarray
    bias: np.ndarray
    kind: str = "softmax"

    def predict(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        z = x @ self.weights + self.bias
        if self.kind == "sigmoid":
            return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass
class Classifier:
    """Both heads, and what they were trained on."""

    labels: tuple[str, ...]
    full: Head
    light: Head
    embedder: str
    thresholds: dict[str, np.ndarray]  # per head, per label: the probability that counts

    def threshold(self, label: str, head: str = "full") -> float:
        """The probability at which `label` counts, chosen on the validation split."""
        return float(self.thresholds[head][self.labels.index(label)])

    def save(self) -> bytes:
        import numpy as np

        buf = BytesIO()
        np.savez_compressed(
            buf,
            labels=np.asarray(self.labels),
            full_w=self.full.weights,
            full_b=self.full.bias,
            light_w=self.light.weights,
            light_b=self.light.bias,
            embedder=np.asarray(self.embedder),
            full_t=self.thresholds["full"],
            light_t=self.thresholds["light"],
            kind=np.asarray(self.full.kind),
        )
        return buf.getvalue()

    @classmethod
    def load(cls, data: bytes) -> Classifier:
        import numpy as np

        with np.load(BytesIO(data)) as z:
            kind = str(z["kind"])
            return cls(
                labels=tuple(str(x) for x in z["labels"]),
                full=Head(z["full_w"].astype(np.float32), z["full_b"].astype(np.float32), kind),
                light=Head(z["light_w"].astype(np.float32), z["light_b"].astype(np.float32), kind),
                embedder=str(z["embedder"]),
                thresholds={"full": z["full_t"], "light": z["light_t"]},
            )


@cache
def packaged() -> Classifier:
    """The shipped classifier; its labels must be the label file's."""
    try:
        data = (resources.files(DATA) / "data" / WEIGHTS_FILE).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"the sentence classifier ({WEIGHTS_FILE}) is missing from this installation",
            hint="run `make train` in a source checkout, or reinstall retro",
        ) from None
    model = Classifier.load(data)
    if model.labels != labels():
        raise ConfigError(
            f"{WEIGHTS_FILE} was trained on other labels than labels.v1.yaml",
            hint="run `make train` to rebuild it",
        )
    return model


@cache
def _cuts() -> dict[tuple[str, bool], float]:
    model = packaged()
    return {
        (label, embedded): model.threshold(label, "full" if embedded else "light")
        for label in model.labels
        for embedded in (True, False)
    }


def cut(label: str, embedded: bool = True) -> float:
    """The probability at which `label` counts for a sentence scored by the full head
    (embedded) or the light head."""
    return _cuts()[(label, embedded)]


def holds(scores: dict[str, float], label: str, embedded: bool = True, factor: float = 1.0) -> bool:
    """Whether a sentence carries `label`: its probability reaches the label's threshold (chosen
    on the validation split), times `factor` where a decision needs more (or less) proof.

    Measured and rejected: also accepting a label that is the sentence's most likely reading at
    half the threshold. It catches more plain statements of cause, but on the dev cases it let
    in more junk than it found (action-item precision 56% -> 51%).
    """
    return scores.get(label, 0.0) >= cut(label, embedded) * factor
