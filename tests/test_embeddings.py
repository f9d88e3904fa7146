"""Embedders: the numpy MiniLM against sentence-transformers, hashing, OpenAI through an emulator."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from emulators.base import Emulator, Request, Response

from retro.errors import ConfigError, MissingCredential, StoreError
from retro.index.embeddings import (
    MINILM_NAME,
    MiniLMEmbedder,
    OpenAIEmbedder,
    _gelu,
    content_hash,
    embedder_for_model,
    get_embedder,
)

SENTENCES = [
    "The primary database ran out of connections after the 14:02 deploy.",
    "A bad router rule pushed to every edge router made them crash.",
    "Leap second",
    "",
    "TLS certificate for api.example.com expired; clients saw handshake failures. " * 30,
    "Kafka consumer lag grew because a GC pause on broker-3 stalled replication; PagerDuty paged.",
    "Ünïcödé and emoji 🚒 and CJK 障害 text.",
]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_gelu_matches_erf() -> None:
    x = np.linspace(-9, 9, 20001).astype(np.float32)
    ref = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    assert np.abs(_gelu(x.copy()) - ref).max() < 2e-6


def test_minilm_vectors_are_unit_and_stable(minilm: MiniLMEmbedder) -> None:
    vecs = minilm.embed(SENTENCES)
    assert vecs.shape == (len(SENTENCES), 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # Batching and order must not change a text's vector.
    single = minilm.embed([SENTENCES[1]])[0]
    np.testing.assert_allclose(single, vecs[1], atol=1e-5)
    np.testing.assert_allclose(minilm.embed(SENTENCES[::-1])[::-1], vecs, atol=1e-5)


def test_minilm_empty_input(minilm: MiniLMEmbedder) -> None:
    assert minilm.embed([]).shape == (0, 384)


def test_minilm_means_something(minilm: MiniLMEmbedder) -> None:
    a, b, c = minilm.embed(
        [
            "The database connection pool was exhausted.",
            "Postgres ran out of available connections.",
            "The office coffee machine is broken.",
        ]
    )
    assert a @ b > a @ c + 0.2


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(minilm: MiniLMEmbedder) -> None:
    from retro.index.embeddings import SentenceTransformerEmbedder

    reference = SentenceTransformerEmbedder().embed(SENTENCES)
    ours = minilm.embed(SENTENCES)
    cosines = (reference * ours).sum(axis=1)
    assert cosines.min() > 0.999, cosines


def test_content_hash_depends_on_model_and_text() -> None:
    h = content_hash(MINILM_NAME, "x")
    assert h == content_hash(MINILM_NAME, "x") and len(h) == 32
    assert h != content_hash("openai:text-embedding-3-small", "x")
    assert h != content_hash(MINILM_NAME, "y")


def test_get_embedder_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(get_embedder("minilm"), MiniLMEmbedder)
    monkeypatch.setenv("RETRO_EMBEDDER", "minilm")
    assert isinstance(get_embedder(), MiniLMEmbedder)
    with pytest.raises(ConfigError, match="Unknown embedder 'word2vec'"):
        get_embedder("word2vec")
    with pytest.raises(MissingCredential, match="OPENAI_API_KEY"):
        get_embedder("openai:text-embedding-3-small")
    with pytest.raises(ConfigError, match="unknown model"):
        embedder_for_model("mystery-model")
    assert isinstance(embedder_for_model(MINILM_NAME), MiniLMEmbedder)


# --- OpenAI through an emulator ---------------------------------------------------------------------


class EmbeddingsEmulator(Emulator):
    """The OpenAI /v1/embeddings endpoint: deterministic vectors, returned in shuffled order."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.dim = dim
        self.route("POST", "/v1/embeddings", self._embeddings)

    def _embeddings(self, req: Request) -> Response:
        if req.headers.get("authorization") != "Bearer sk-test":
            return (
                401,
                {"error": {"message": "Incorrect API key", "type": "invalid_request_error"}},
                {},
            )
        body: dict[str, Any] = req.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for i, text in enumerate(inputs):
            rng = np.random.default_rng(abs(hash(text)) % 2**32)
            data.append(
                {"object": "embedding", "index": i, "embedding": rng.random(self.dim).tolist()}
            )
        data.reverse()  # clients must order by index, not by position
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return 200, {"object": "list", "data": data, "model": body["model"], "usage": usage}, {}


@pytest.fixture
def emulator() -> Iterator[EmbeddingsEmulator]:
    with EmbeddingsEmulator() as emu:
        yield emu  # type: ignore[misc]


def test_openai_embedder_orders_and_normalises(emulator: EmbeddingsEmulator) -> None:
    emb = OpenAIEmbedder(api_key="sk-test", base_url=f"{emulator.url}/v1")
    emb.batch_size = 2
    vecs = emb.embed(["a", "b", "c"])
    assert vecs.shape == (3, 16) and emb.dim == 16
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(emb.embed(["c"])[0], vecs[2], atol=1e-6)
    assert emb.model_id == "openai:text-embedding-3-small"
    assert len([r for r in emulator.log if r.path == "/v1/embeddings"]) == 3


def test_openai_embedder_retries_429(emulator: EmbeddingsEmulator) -> None:
    emulator.inject("/v1/embeddings", status=429, headers={"Retry-After": "0"}, body={"error": {}})
    emb = OpenAIEmbedder(api_key="sk-test", base_url=f"{emulator.url}/v1")
    assert emb.embed(["a"]).shape == (1, 16)
    assert len(emulator.log) == 2


def test_openai_bad_key_is_a_store_error(emulator: EmbeddingsEmulator) -> None:
    emb = OpenAIEmbedder(api_key="sk-wrong", base_url=f"{emulator.url}/v1")
    with pytest.raises(StoreError, match="OpenAI embeddings failed") as info:
        emb.embed(["a"])
    assert "OPENAI_API_KEY" in str(info.value)


def test_openai_base_url_from_env(
    emulator: EmbeddingsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{emulator.url}/v1")
    emb = get_embedder("openai:text-embedding-3-large")
    assert emb.embed(["x"]).shape == (1, 16)
    assert emulator.log[-1].json()["model"] == "text-embedding-3-large"
