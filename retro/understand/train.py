"""Train the sentence classifier from the labelled corpus: `make train` (python -m retro.understand.train).

Reproducible: the corpus is training/sentences/*.jsonl; the held-out split is every sentence
whose id hashes to 0 mod 5; training is full-batch gradient descent from zeros, so the same
corpus, cues and embedder give the same weights. Prints each label's precision, recall and F1
on the held-out split for both heads, writes them to training/metrics.json, and writes the
weights (trained on the whole corpus) to retro/understand/data/classifier.v1.npz.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from retro.understand.labels import labels
from retro.understand.model import WEIGHTS_FILE, Classifier, Head, light_features

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "training" / "sentences"
CACHE = ROOT / "training" / ".cache"
OUT = Path(__file__).resolve().parent / "data" / WEIGHTS_FILE
METRICS = ROOT / "training" / "metrics.json"

KIND = "sigmoid"
WEIGHTED = False  # positives weighted by sqrt(neg/pos): off, it inflates every probability
L2 = 1e-4  # chosen on an inner validation split (ids hashing to 1 mod 5), not the held-out one
STEPS = 1000
RATE = 0.1


def load_corpus(folder: Path = CORPUS) -> list[dict[str, Any]]:
    """Every labelled sentence; a malformed line is an error naming the file and line."""
    known = set(labels())
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            bad = set(row.get("labels") or []) - known
            if not row.get("text") or not row.get("labels") or bad:
                raise SystemExit(f"{path.name} line {n}: needs text and known labels ({bad})")
            rows.append(row)
    return rows


def is_held_out(row_id: str) -> bool:
    return int(hashlib.sha1(row_id.encode()).hexdigest(), 16) % 5 == 0


def is_validation(row_id: str) -> bool:
    """The split thresholds and settings are chosen on (never the held-out one)."""
    return int(hashlib.sha1(row_id.encode()).hexdigest(), 16) % 5 == 1


def choose_thresholds(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per label, the probability cut that maximises F1 on the validation split."""
    grid = np.round(np.arange(0.1, 0.91, 0.05), 2)
    out = np.full(y.shape[1], 0.5, dtype=np.float32)
    for j in range(y.shape[1]):
        best = -1.0
        for cut in grid:
            pred = probs[:, j] >= cut
            tp = float((pred & (y[:, j] > 0)).sum())
            f1 = 2 * tp / (pred.sum() + (y[:, j] > 0).sum()) if tp else 0.0
            if f1 > best:
                best, out[j] = f1, cut
    return out


def embed(texts: list[str]) -> np.ndarray:
    """MiniLM vectors, cached on disk by text hash (the cache only saves time)."""
    from retro.index.embeddings import MiniLMEmbedder

    CACHE.mkdir(parents=True, exist_ok=True)
    cache_file = CACHE / "minilm.npz"
    cached: dict[str, np.ndarray] = {}
    if cache_file.exists():
        with np.load(cache_file) as z:
            cached = dict(zip([str(k) for k in z["keys"]], z["vectors"], strict=True))
    keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cached}.items())
    if missing:
        print(f"train: embedding {len(missing)} sentences", file=sys.stderr)
        vectors = MiniLMEmbedder().embed([t for _, t in missing])
        cached.update({k: v for (k, _), v in zip(missing, vectors, strict=True)})
        np.savez_compressed(
            cache_file, keys=np.asarray(list(cached)), vectors=np.stack(list(cached.values()))
        )
    return np.stack([cached[k] for k in keys]).astype(np.float32)


def fit(x: np.ndarray, y: np.ndarray, kind: str | None = None) -> Head:
    """Logistic regression, L2, full-batch Adam from zeros: the same data gives the same weights.

    kind "softmax": the labels compete, with soft targets (a two-label sentence is half of
    each). kind "sigmoid": one independent yes/no per label, positives weighted by
    sqrt(negatives / positives).
    """
    kind = kind or KIND
    n, d = x.shape
    k = y.shape[1]
    target = y / np.maximum(y.sum(axis=1, keepdims=True), 1.0) if kind == "softmax" else y
    pos = y.sum(axis=0)
    pos_weight = np.sqrt(np.maximum(n - pos, 1) / np.maximum(pos, 1)).astype(np.float32)
    w = np.zeros((d, k), dtype=np.float32)
    b = np.zeros(k, dtype=np.float32)
    m_w, v_w = np.zeros_like(w), np.zeros_like(w)
    m_b, v_b = np.zeros_like(b), np.zeros_like(b)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, STEPS + 1):
        z = x @ w + b
        if kind == "softmax":
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            grad_z = (p - target) / n
        else:
            p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
            grad_z = (
                (p - target) * np.where(target > 0, pos_weight, 1.0) / n
                if WEIGHTED
                else (p - target) / n
            )
        g_w = x.T @ grad_z + L2 * w
        g_b = grad_z.sum(axis=0)
        m_w = beta1 * m_w + (1 - beta1) * g_w
        v_w = beta2 * v_w + (1 - beta2) * g_w * g_w
        m_b = beta1 * m_b + (1 - beta1) * g_b
        v_b = beta2 * v_b + (1 - beta2) * g_b * g_b
        scale = RATE * np.sqrt(1 - beta2**step) / (1 - beta1**step)
        w -= (scale * m_w / (np.sqrt(v_w) + eps)).astype(np.float32)
        b -= (scale * m_b / (np.sqrt(v_b) + eps)).astype(np.float32)
    return Head(w, b, kind)


def report(
    head: Head, x: np.ndarray, y: np.ndarray, names: tuple[str, ...], cuts: np.ndarray
) -> dict[str, Any]:
    """Precision, recall and F1 per label at the chosen thresholds, and their macro averages."""
    pred = head.predict(x) >= cuts
    out: dict[str, Any] = {}
    for j, name in enumerate(names):
        tp = int((pred[:, j] & (y[:, j] > 0)).sum())
        fp = int((pred[:, j] & (y[:, j] == 0)).sum())
        fn = int((~pred[:, j] & (y[:, j] > 0)).sum())
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        out[name] = {
            "precision": round(p, 3),
            "recall": round(r, 3),
            "f1": round(f, 3),
            "support": int(y[:, j].sum()),
        }
    for key in ("precision", "recall", "f1"):
        out.setdefault("macro", {})[key] = round(float(np.mean([out[n][key] for n in names])), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train retro's sentence classifier.")
    parser.add_argument("--check", action="store_true", help="train and report, write nothing")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    names = labels()
    rows = load_corpus()
    texts = [r["text"] for r in rows]
    y = np.asarray([[1.0 if n in r["labels"] else 0.0 for n in names] for r in rows], np.float32)
    light = light_features(texts)
    full = np.hstack([embed(texts), light])
    test = np.asarray([is_held_out(r["id"]) for r in rows])
    print(f"train: {len(rows)} sentences, {len(names)} labels; held out {int(test.sum())}")
    metrics: dict[str, Any] = {"sentences": len(rows), "held_out": int(test.sum())}
    val = np.asarray([is_validation(r["id"]) for r in rows]) & ~test
    thresholds: dict[str, np.ndarray] = {}
    for head_name, x in (("full", full), ("light", light)):
        tuned = fit(x[~test & ~val], y[~test & ~val])
        thresholds[head_name] = choose_thresholds(tuned.predict(x[val]), y[val])
        head = fit(x[~test], y[~test])
        metrics[head_name] = report(head, x[test], y[test], names, thresholds[head_name])
    metrics["thresholds"] = {
        h: dict(zip(names, map(float, v), strict=True)) for h, v in thresholds.items()
    }
    _print(metrics, names)
    if args.check:
        return 0
    model = Classifier(
        labels=names,
        full=fit(full, y),
        light=fit(light, y),
        embedder="all-MiniLM-L6-v2",
        thresholds=thresholds,
    )
    OUT.write_bytes(model.save())
    METRICS.write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    print(
        f"train: wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} KB) and "
        f"{METRICS.relative_to(ROOT)} in {time.perf_counter() - started:.0f} s"
    )
    return 0


def _print(metrics: dict[str, Any], names: tuple[str, ...]) -> None:
    print(f"{'label':<18} {'full P':>7} {'R':>6} {'F1':>6}   {'light P':>7} {'R':>6} {'F1':>6}  n")
    for name in (*names, "macro"):
        f, li = metrics["full"][name], metrics["light"][name]
        print(
            f"{name:<18} {f['precision']:>7.2f} {f['recall']:>6.2f} {f['f1']:>6.2f}   "
            f"{li['precision']:>7.2f} {li['recall']:>6.2f} {li['f1']:>6.2f}  "
            f"{f.get('support', '')}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
