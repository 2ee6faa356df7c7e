"""The chromadb backend: an embedded `PersistentClient` directory, or a chroma server through `HttpClient`.

memrl computes embeddings itself and hands chroma vectors. Each collection still records its embedder twice:
in its metadata (`memrl_embedder`, `memrl_dim`), which memrl checks on every open so vectors of two models are
never mixed, and as a registered chroma embedding function (`memrl`), so a collection reopened by plain
chromadb in a new process (after `import memrl.memory.chroma`) embeds query texts with the same model.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.errors import ChromaError, NotFoundError
from chromadb.utils.embedding_functions import register_embedding_function

from memrl.errors import ConfigError
from memrl.memory import exact
from memrl.memory.base import Embedder, IndexSettings, Row, Where

__all__ = ["ChromaBackend", "ChromaIndex", "MemrlEmbeddingFunction", "SCHEMA_VERSION"]

log = logging.getLogger(__name__)

#: Version of the layout memrl writes into a collection (document = record JSON, flat filter metadata).
SCHEMA_VERSION = 1


@register_embedding_function
class MemrlEmbeddingFunction(EmbeddingFunction[Documents]):
    """A chroma embedding function wrapping a memrl `Embedder`, rebuilt from its name in a new process."""

    def __init__(self, embedder: Embedder | str) -> None:
        self._embedder = embedder if not isinstance(embedder, str) else None
        self._name = embedder if isinstance(embedder, str) else embedder.name

    def _get(self) -> Embedder:
        if self._embedder is None:  # built lazily: opening a collection must not load a model
            from memrl.memory.embed import make_embedder

            self._embedder = make_embedder(self._name)
        return self._embedder

    def __call__(self, input: Documents) -> Embeddings:
        import numpy as np

        return [np.asarray(v, dtype=np.float32) for v in self._get().embed(list(input))]

    @staticmethod
    def name() -> str:
        return "memrl"

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self._name}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MemrlEmbeddingFunction:
        return MemrlEmbeddingFunction(str(config["embedder"]))

    def default_space(self) -> Any:
        return "cosine"

    def supported_spaces(self) -> Any:
        return ["cosine"]


class ChromaIndex:
    """One chroma collection as a memrl `VectorIndex`. Unfiltered queries on a collection of fewer than
    `exact_below` rows are answered exactly from a cached matrix (`memrl.memory.exact`), others by HNSW."""

    def __init__(self, collection: Any, max_batch: int, location: str = "", exact_below: int = 0) -> None:
        self._col, self._max_batch, self._exact_below = collection, max_batch, exact_below
        self._key = (location, str(collection.name))

    @property
    def name(self) -> str:
        return str(self._col.name)

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._col.metadata or {})

    def upsert(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        documents: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        self._write(self._col.upsert, ids, embeddings, documents, metadatas)

    def insert(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        documents: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        # chroma's `add` skips ids the collection holds already and keeps their rows (checked against
        # `chroma run` and PersistentClient, chromadb 1.5: no error, first write wins).
        self._write(self._col.add, ids, embeddings, documents, metadatas)

    def _write(
        self,
        op: Any,
        ids: list[str],
        embeddings: list[list[float]],
        documents: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        """Call the collection's `upsert` or `add` in slices of at most the client's max batch size."""
        exact.drop(self._key)
        step = self._max_batch
        for i in range(0, len(ids), step):
            op(
                ids=ids[i : i + step],
                embeddings=embeddings[i : i + step],
                documents=documents[i : i + step],
                metadatas=metadatas[i : i + step],
            )

    def get(
        self, ids: list[str] | None = None, where: Where | None = None, include_embeddings: bool = False
    ) -> list[Row]:
        if ids is not None and not ids:
            return []
        include = ["documents", "metadatas", *(["embeddings"] if include_embeddings else [])]
        res = self._col.get(ids=ids, where=where or None, include=include)
        embs = res.get("embeddings")
        return [
            Row(
                id=res["ids"][i],
                document=res["documents"][i],
                metadata=dict(res["metadatas"][i] or {}),
                embedding=[float(x) for x in embs[i]] if include_embeddings and embs is not None else None,
            )
            for i in range(len(res["ids"]))
        ]

    def query(
        self, embedding: list[float], k: int, where: Where | None = None, include_embeddings: bool = False
    ) -> list[Row]:
        if k <= 0:
            return []
        if self._exact_below and not where:
            n = self.count()
            if n < self._exact_below:
                return exact.top_k(
                    exact.cached(self._key, n, self._read_all), embedding, k, include_embeddings
                )
        include = ["documents", "metadatas", "distances", *(["embeddings"] if include_embeddings else [])]
        res = self._col.query(query_embeddings=[embedding], n_results=k, where=where or None, include=include)
        embs = res.get("embeddings")
        return [
            Row(
                id=res["ids"][0][i],
                document=res["documents"][0][i],
                metadata=dict(res["metadatas"][0][i] or {}),
                embedding=[float(x) for x in embs[0][i]] if include_embeddings and embs is not None else None,
                similarity=1.0 - float(res["distances"][0][i]),
            )
            for i in range(len(res["ids"][0]))
        ]

    def _read_all(self) -> dict[str, list[Any]]:
        """Every row with its embedding, read in pages (one `get` of 100k rows passes sqlite's variable limit)."""
        out: dict[str, list[Any]] = {"ids": [], "embeddings": [], "documents": [], "metadatas": []}
        step = min(self._max_batch, 5000)
        while True:
            res = self._col.get(
                include=["embeddings", "documents", "metadatas"], limit=step, offset=len(out["ids"])
            )
            for key in out:
                out[key].extend(res[key])
            if len(res["ids"]) < step:
                return out

    def delete(self, ids: list[str]) -> None:
        exact.drop(self._key)
        for i in range(0, len(ids), self._max_batch):
            self._col.delete(ids=ids[i : i + self._max_batch])

    def count(self) -> int:
        return int(self._col.count())


class ChromaBackend:
    """Chroma at a directory (embedded) or at `http(s)://host:port` (a `chroma run` server)."""

    def __init__(self, location: str | Path, index: IndexSettings | None = None) -> None:
        loc = str(location)
        self.location, self.settings = loc, index or IndexSettings()
        self._exact_below = self.settings.exact_below
        if loc.startswith(("http://", "https://")):
            url = urlparse(loc)
            if not url.hostname:
                raise ConfigError(f"memory url {loc!r} has no host; write it as http://host:port")
            port = url.port or (443 if url.scheme == "https" else 8000)
            try:
                self.client: Any = chromadb.HttpClient(
                    host=url.hostname, port=port, ssl=url.scheme == "https"
                )
                self.client.heartbeat()
            except Exception as e:  # chromadb raises ValueError or httpx errors for an unreachable server
                raise ConfigError(
                    f"cannot reach a chroma server at {loc}: {e}. Start one with "
                    f"`chroma run --path DIR --host {url.hostname} --port {port}`, or use a directory path instead"
                ) from e
            self._exact_below = 0  # a server may have other writers: its rows are not cached here
        else:
            path = Path(loc).expanduser()
            if path.exists() and not path.is_dir():
                raise ConfigError(
                    f"memory path {loc!r} is a file; give a directory (it is created if missing)"
                )
            path.mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(path=str(path))
        self._max_batch = int(self.client.get_max_batch_size())

    def open_index(self, name: str, embedder: Embedder) -> ChromaIndex:
        meta = {
            "memrl_embedder": embedder.name,
            "memrl_dim": int(embedder.dim),
            "memrl_schema": SCHEMA_VERSION,
        }
        s = self.settings
        hnsw = {"space": "cosine", "ef_search": s.search_ef, "ef_construction": s.construction_ef}
        col = self.client.get_or_create_collection(
            name,
            metadata=meta,
            configuration={"hnsw": {**hnsw, "max_neighbors": s.m}},
            embedding_function=MemrlEmbeddingFunction(embedder),
        )
        have = dict(col.metadata or {})
        if have.get("memrl_embedder") != embedder.name or int(have.get("memrl_dim", -1)) != int(embedder.dim):
            raise ConfigError(
                f"memory collection {name!r} at {self.location} holds vectors of embedder "
                f"{have.get('memrl_embedder')!r} (dim {have.get('memrl_dim')}), but it was opened with "
                f"{embedder.name!r} (dim {embedder.dim}). Vectors of two models cannot be mixed: open it with "
                f"embedder {have.get('memrl_embedder')!r}, or export it and import it into a new location with the "
                "new embedder (import re-embeds every record)"
            )
        self._apply_settings(col)
        log.debug("opened chroma collection %s at %s", name, self.location)
        return ChromaIndex(col, self._max_batch, self.location, self._exact_below)

    def _apply_settings(self, col: Any) -> None:
        """Set `search_ef` on an existing collection; warn when its build settings differ from the asked ones
        (chroma fixes `ef_construction` and `max_neighbors` when a collection is created)."""
        have = dict((col.configuration or {}).get("hnsw") or {})
        s = self.settings
        if have.get("ef_search") not in (None, s.search_ef):
            for attempt in range(3):  # chroma's sqlite answers "database is locked" now and then
                try:
                    col.modify(configuration={"hnsw": {"ef_search": s.search_ef}})
                    break
                except ChromaError as e:
                    if attempt == 2:
                        log.warning(
                            "memory collection %s keeps search_ef %s: %s", col.name, have["ef_search"], e
                        )
                        return
                    time.sleep(0.05 * (attempt + 1))
            # chroma reads ef_search when it loads an index: a process that already searched it keeps the old one
            log.info("memory collection %s: search_ef %s -> %s", col.name, have["ef_search"], s.search_ef)
        built = (have.get("ef_construction"), have.get("max_neighbors"))
        if None not in built and built != (s.construction_ef, s.m):
            log.warning(
                "memory collection %s at %s keeps the build settings it was created with (construction_ef %s, "
                "m %s), not the asked construction_ef %s, m %s; to rebuild it, export it and import it into a "
                "new location",
                col.name,
                self.location,
                built[0],
                built[1],
                s.construction_ef,
                s.m,
            )

    def existing_index(self, name: str) -> ChromaIndex:
        try:
            col = self.client.get_collection(name)
        except (NotFoundError, ValueError) as e:
            raise ConfigError(f"no memory collection {name!r} at {self.location}") from e
        return ChromaIndex(col, self._max_batch, self.location, self._exact_below)

    def index_names(self) -> list[str]:
        return sorted(c.name for c in self.client.list_collections())

    def drop_index(self, name: str) -> None:
        exact.drop((self.location, name))
        self.client.delete_collection(name)
