"""Embedders: the bundled MiniLM (real ONNX model), litellm embeddings at the wire, the hash test double."""

from __future__ import annotations

import base64
import importlib.metadata as md
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from memrl.errors import AuthenticationError, ConfigError
from memrl.memory import HashEmbedder, LiteLLMEmbedder, MiniLMEmbedder, make_embedder
from memrl.memory import embed as embed_mod

TEXTS = [
    "A kitten sleeps on the sofa.",
    "A small cat is napping on the couch.",
    "The stock market fell sharply on Monday.",
    "Shares dropped steeply at the start of the week.",
    "",
    "word " * 400,  # longer than the model's 256-token window: truncated, not an error
]


@pytest.fixture(scope="module")
def minilm():
    return make_embedder()


def test_minilm_vectors(minilm):
    assert isinstance(minilm, MiniLMEmbedder) and minilm.dim == 384 and minilm.name == "minilm-l6-v2-int8"
    v = np.array(minilm.embed(TEXTS))
    assert v.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sim = v @ v.T
    assert sim[0, 1] > 0.6 and sim[2, 3] > 0.6  # paraphrases close
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[2, 3] > sim[1, 3] + 0.3  # topics apart
    assert make_embedder("minilm-l6-v2-int8") is minilm  # one model load per process


def test_minilm_batching_does_not_change_vectors(minilm):
    together = np.array(minilm.embed(TEXTS))
    alone = np.array([minilm.embed([t])[0] for t in TEXTS])
    assert np.abs(together - alone).max() < 1e-4


def test_minilm_matches_onnxruntime_called_directly(minilm):
    import onnxruntime as ort

    model_path, _ = embed_mod.minilm_files()
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    inputs = minilm.tokenize(TEXTS[:4])
    (hidden,) = session.run(None, inputs)
    mask = inputs["attention_mask"][:, :, None]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    assert np.abs(pooled - np.array(minilm.embed(TEXTS[:4]))).max() < 1e-5


def test_missing_package_names_the_extra(monkeypatch):
    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(embed_mod.md, "distribution", missing)
    with pytest.raises(ConfigError, match=r"pip install 'memrl\[embed\]'"):
        MiniLMEmbedder()


def test_hash_embedder_is_deterministic():
    a, b = HashEmbedder(32), HashEmbedder(32)
    assert a.embed(["same text"]) == b.embed(["same text"])
    assert a.name == "hash-32" and len(a.embed(["x"])[0]) == 32
    assert make_embedder("hash-16").dim == 16


class _EmbeddingsHandler(BaseHTTPRequestHandler):
    """Speaks OpenAI's POST /v1/embeddings, float or base64, and 401 for a bad key."""

    calls: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append(body)
        if self.headers.get("Authorization") != "Bearer good-key":
            return self._send(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for i, t in enumerate(texts):
            vec = np.array([len(t), 1.0, 2.0], dtype=np.float32)  # deliberately not normalised
            emb = (
                base64.b64encode(vec.tobytes()).decode()
                if body.get("encoding_format") == "base64"
                else vec.tolist()
            )
            data.append({"object": "embedding", "index": i, "embedding": emb})
        self._send(
            200,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            },
        )

    def _send(self, status, payload):
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture
def embeddings_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _EmbeddingsHandler.calls = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_litellm_embedder_at_the_wire(embeddings_server, monkeypatch):
    monkeypatch.setenv("FAKE_EMBED_KEY", "good-key")
    emb = LiteLLMEmbedder(
        "openai/fake-embed",
        api_base=embeddings_server,
        api_key_env="FAKE_EMBED_KEY",
        batch_size=2,
        max_retries=0,
    )
    assert emb.name == "litellm/openai/fake-embed"
    vecs = np.array(emb.embed(["a", "bbb", "cc"]))
    assert len(_EmbeddingsHandler.calls) == 2  # batched by 2
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    expected = np.array([3.0, 1.0, 2.0]) / np.linalg.norm([3.0, 1.0, 2.0])
    assert np.allclose(vecs[1], expected, atol=1e-5)  # order kept
    assert emb.dim == 3


def test_litellm_embedder_maps_auth_errors(embeddings_server, monkeypatch):
    monkeypatch.setenv("FAKE_EMBED_KEY", "wrong-key")
    emb = LiteLLMEmbedder(
        "openai/fake-embed", api_base=embeddings_server, api_key_env="FAKE_EMBED_KEY", max_retries=0
    )
    with pytest.raises(AuthenticationError) as info:
        emb.embed(["a"])
    assert info.value.status == 401 and "wrong-key" not in str(info.value)


def test_known_litellm_dims_need_no_call():
    assert LiteLLMEmbedder("openai/text-embedding-3-small").dim == 1536
    assert make_embedder("litellm/openai/text-embedding-3-large").dim == 3072
