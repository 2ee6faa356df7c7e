"""The memory layer's Protocols: what algorithms depend on, never chromadb or a model SDK.

- `Embedder` turns texts into unit vectors.
- `RecordStore[R]` is a typed store of records: add, get, update, delete, similarity query, count, all.
  `ExperienceStore`, `CaseStore`, `SubtaskStore` and `ToolStore` are the four stores algorithms use.
- `VectorIndex` / `VectorBackend` are the raw vector collections a store sits on (chromadb, or the in-memory
  one in `memrl.memory.testing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from memrl.memory.records import CaseRecord, LessonRecord, MemoryRecord, SubtaskRecord, ToolCallRecord

__all__ = [
    "Embedder",
    "Where",
    "Hit",
    "Row",
    "RecordStore",
    "ExperienceStore",
    "CaseStore",
    "SubtaskStore",
    "ToolStore",
    "MemoryStores",
    "VectorIndex",
    "VectorBackend",
    "IndexSettings",
]

R = TypeVar("R", bound=MemoryRecord)
R_co = TypeVar("R_co", bound=MemoryRecord, covariant=True)

#: A metadata filter in chromadb's `where` syntax: `{"status": "active"}`, `{"reward": {"$gte": 0.5}}`,
#: `{"$and": [...]}`, `{"$or": [...]}`; operators `$eq $ne $gt $gte $lt $lte $in $nin`.
Where = dict[str, Any]


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised vectors of a fixed dimension. `name` identifies the model."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> list[list[float]]: ...


@dataclass
class Hit(Generic[R]):
    """A query result: the record, its cosine similarity to the query, and (on request) its vector."""

    record: R
    similarity: float
    embedding: list[float] | None = field(default=None, repr=False)


@dataclass
class Row:
    """One raw entry of a vector index."""

    id: str
    document: str
    metadata: dict[str, Any]
    embedding: list[float] | None = field(default=None, repr=False)
    similarity: float | None = None


class RecordStore(Protocol[R]):
    """A typed, persistent, similarity-searchable store of records."""

    @property
    def record_type(self) -> type[R]: ...

    def add(self, records: Sequence[R]) -> list[str]:
        """Insert new records; an id that exists already is an error."""
        ...

    def upsert(self, records: Sequence[R]) -> list[str]:
        """Insert or replace records by id."""
        ...

    def get(self, id: str) -> R | None: ...

    def get_many(self, ids: Sequence[str]) -> list[R]: ...

    def update(self, id: str, /, **changes: Any) -> R:
        """Change fields of a stored record (re-embedding it when its text changes) and return it."""
        ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def query(
        self,
        text: str,
        k: int = 5,
        *,
        where: Where | None = None,
        min_similarity: float | None = None,
        include_embeddings: bool = False,
    ) -> list[Hit[R]]:
        """The k records most similar to `text` among those matching `where`, best first."""
        ...

    def count(self, where: Where | None = None) -> int: ...

    def all(self, where: Where | None = None) -> list[R]: ...

    def mark_used(self, ids: Sequence[str]) -> None:
        """Count one use (the record went into a prompt) for each id."""
        ...


class ExperienceStore(RecordStore[LessonRecord], Protocol):
    """Lessons as a retrieval index; editing, ids, versions and counters are `memrl.library.Library`'s."""

    def active(self) -> list[LessonRecord]: ...


class CaseStore(RecordStore[CaseRecord], Protocol):
    pass


class SubtaskStore(RecordStore[SubtaskRecord], Protocol):
    pass


class ToolStore(RecordStore[ToolCallRecord], Protocol):
    pass


class MemoryStores(Protocol):
    """The four stores of one namespace (what `memrl.memory.open_memory` returns): what algorithms get."""

    @property
    def cases(self) -> CaseStore: ...

    @property
    def subtasks(self) -> SubtaskStore: ...

    @property
    def tools(self) -> ToolStore: ...

    def stores(self) -> dict[str, Any]: ...


class IndexSettings(BaseModel):
    """How a vector index searches. `search_ef`, `construction_ef` and `m` are chroma's HNSW settings
    (`ef_search`, `ef_construction`, `max_neighbors`). Defaults from `bench/bench_memory.py --curve` (2 cores):
    on MiniLM embeddings at 100k, search_ef 100 gives recall@10 1.000 at p50 2.4 ms (50: 0.997, no faster);
    exact search took 1.2 ms at 10k (HNSW 2.3 ms) and about the same as HNSW at 20k (2.4 vs 2.2 ms).
    Random vectors are HNSW's worst case: recall@10 0.11 at 100k with these defaults, 0.60 at m 32,
    construction_ef 200, search_ef 400 (7.6 ms); only exact search (about 9.5 ms at 100k) is exact there.
    `construction_ef` and `m` are fixed when a collection is created: an existing collection keeps its own
    (a warning says so when they differ); `search_ef` is applied to existing collections too. Collections
    holding fewer than `exact_below` rows are searched exactly (numpy over a cached matrix; embedded chroma
    directories only), which measured faster than HNSW there; 0 turns exact search off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    search_ef: int = Field(default=100, ge=1, description="HNSW candidates kept per query (ef_search).")
    construction_ef: int = Field(default=100, ge=1, description="HNSW build depth (ef_construction).")
    m: int = Field(default=16, ge=2, description="HNSW links per node (max_neighbors).")
    exact_below: int = Field(default=20_000, ge=0, description="Exact numpy search below this many rows.")


class VectorIndex(Protocol):
    """One raw collection of (id, vector, document, flat metadata), cosine space."""

    @property
    def name(self) -> str: ...

    @property
    def metadata(self) -> dict[str, Any]:
        """Collection-level metadata (embedder name and dimension, memrl schema)."""
        ...

    def upsert(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        documents: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None: ...

    def insert(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        documents: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        """Write rows whose ids are new; an id that exists keeps its row, silently (the first write wins)."""
        ...

    def get(
        self, ids: list[str] | None = None, where: Where | None = None, include_embeddings: bool = False
    ) -> list[Row]: ...

    def query(
        self, embedding: list[float], k: int, where: Where | None = None, include_embeddings: bool = False
    ) -> list[Row]:
        """Nearest rows, best first, with `similarity` set (1 - cosine distance)."""
        ...

    def delete(self, ids: list[str]) -> None: ...

    def count(self) -> int: ...


class VectorBackend(Protocol):
    """Where vector indexes live: a chroma directory, a chroma server, or process memory."""

    @property
    def location(self) -> str: ...

    def open_index(self, name: str, embedder: Embedder) -> VectorIndex:
        """Open or create an index for vectors of `embedder`; raises ConfigError if it holds another model's."""
        ...

    def existing_index(self, name: str) -> VectorIndex:
        """Open an existing index without an embedder (for reading, export and stats)."""
        ...

    def index_names(self) -> list[str]: ...

    def drop_index(self, name: str) -> None: ...
