"""One generic typed record store over a vector index, four thin typed facades, and `open_memory`.

A record is kept as: id; the record's JSON as the document; its embedding (of `record.embed_text()`); and flat
metadata = its `filter_fields` plus its own `metadata` under `m.<key>`, so chroma `where` filters work on both.
Callers write filters with plain names (`{"status": "active"}`, `{"topic": "algebra"}`); `_translate` maps them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from memrl.errors import ConfigError
from memrl.memory.base import Embedder, Hit, IndexSettings, Row, VectorBackend, VectorIndex, Where
from memrl.memory.records import CaseRecord, LessonRecord, MemoryRecord, SubtaskRecord, ToolCallRecord

__all__ = [
    "RecordCollection",
    "ExperienceLibrary",
    "CaseMemory",
    "SubtaskMemory",
    "ToolMemory",
    "Memory",
    "open_memory",
    "open_backend",
    "index_name",
    "META_PREFIX",
]

R = TypeVar("R", bound=MemoryRecord)

#: Prefix of a record's own metadata keys inside chroma metadata.
META_PREFIX = "m."
_OPERATORS = {"$and", "$or"}
_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{0,62}")


def index_name(namespace: str, kind: str) -> str:
    """The collection name of one store: `memrl-<namespace>-<kind>`."""
    return f"memrl-{namespace}-{kind}"


class RecordCollection(Generic[R]):
    """A typed store of `record_type` records on one vector index. Implements `RecordStore[R]`."""

    def __init__(self, index: VectorIndex, embedder: Embedder, record_type: type[R]) -> None:
        self.index, self.embedder, self._type = index, embedder, record_type

    @property
    def record_type(self) -> type[R]:
        return self._type

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.index.name!r}, embedder={self.embedder.name!r})"

    # -- (de)serialisation -------------------------------------------------------------------------------------

    def _metadata(self, record: R) -> dict[str, Any]:
        meta: dict[str, Any] = {"_kind": record.kind}
        meta.update({f: getattr(record, f) for f in record.filter_fields})
        meta.update({META_PREFIX + k: v for k, v in record.metadata.items()})
        return meta

    def _record(self, row: Row) -> R:
        return self._type.model_validate_json(row.document)

    def _translate(self, where: Where | None) -> Where | None:
        """Map plain filter keys to stored metadata keys; several keys become an `$and`."""
        if not where:
            return None
        clauses = []
        for key, value in where.items():
            if key in _OPERATORS:
                clauses.append({key: [self._translate(w) for w in value]})
            elif key.startswith("$"):
                raise ConfigError(
                    f"filter operator {key!r} must sit under a field name, e.g. {{'reward': {{{key!r}: ...}}}}"
                )
            elif key in self._type.filter_fields or key.startswith(("_", META_PREFIX)):
                clauses.append({key: value})
            else:
                clauses.append({META_PREFIX + key: value})
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def _write(self, records: Sequence[R], embeddings: list[list[float]] | None = None) -> list[str]:
        if not records:
            return []
        for r in records:
            if not isinstance(r, self._type):
                raise TypeError(f"{type(self).__name__} stores {self._type.__name__}, got {type(r).__name__}")
        ids = [r.id for r in records]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate ids in one write")
        if embeddings is None:
            embeddings = self.embedder.embed([r.embed_text() for r in records])
        docs = [r.model_dump_json() for r in records]
        self.index.upsert(ids, embeddings, docs, [self._metadata(r) for r in records])
        return ids

    # -- RecordStore -------------------------------------------------------------------------------------------

    def add(self, records: Sequence[R]) -> list[str]:
        taken = [row.id for row in self.index.get(ids=[r.id for r in records])] if records else []
        if taken:
            raise ValueError(f"ids already in {self.index.name}: {taken[:5]} (use upsert or update)")
        return self._write(records)

    def upsert(self, records: Sequence[R]) -> list[str]:
        return self._write(records)

    def get(self, id: str) -> R | None:
        rows = self.index.get(ids=[id])
        return self._record(rows[0]) if rows else None

    def get_many(self, ids: Sequence[str]) -> list[R]:
        by_id = {row.id: row for row in self.index.get(ids=list(ids))} if ids else {}
        return [self._record(by_id[i]) for i in ids if i in by_id]

    def update(self, id: str, /, **changes: Any) -> R:
        if "id" in changes:
            raise ValueError("a record's id cannot change; add a new record and delete the old one")
        rows = self.index.get(ids=[id], include_embeddings=True)
        if not rows:
            raise KeyError(f"no record with id {id!r} in {self.index.name}")
        old = self._record(rows[0])
        new = self._type.model_validate({**old.model_dump(), "updated_at": time.time(), **changes})
        same_text = new.embed_text() == old.embed_text() and rows[0].embedding is not None
        self._write([new], [rows[0].embedding] if same_text else None)  # type: ignore[list-item]
        return new

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.index.delete(list(ids))

    def query(
        self,
        text: str,
        k: int = 5,
        *,
        where: Where | None = None,
        min_similarity: float | None = None,
        include_embeddings: bool = False,
    ) -> list[Hit[R]]:
        if k <= 0:
            return []
        (vector,) = self.embedder.embed([text])
        rows = self.index.query(vector, k, self._translate(where), include_embeddings)
        hits = [Hit(self._record(r), float(r.similarity or 0.0), r.embedding) for r in rows]
        if min_similarity is not None:
            hits = [h for h in hits if h.similarity >= min_similarity]
        return hits

    def count(self, where: Where | None = None) -> int:
        return self.index.count() if not where else len(self.index.get(where=self._translate(where)))

    def all(self, where: Where | None = None) -> list[R]:
        records = [self._record(r) for r in self.index.get(where=self._translate(where))]
        return sorted(records, key=lambda r: (r.created_at, r.id))

    def mark_used(self, ids: Sequence[str]) -> None:
        rows = self.index.get(ids=list(ids), include_embeddings=True) if ids else []
        now = time.time()
        for row in rows:
            old = self._record(row)
            new = old.model_copy(update={"uses": old.uses + 1, "last_used_at": now})
            self._write([new], [row.embedding] if row.embedding is not None else None)


class ExperienceLibrary(RecordCollection[LessonRecord]):
    """The lessons of a library as a retrieval index (query by text, filter by status). Lessons are edited,
    numbered, versioned and counted in one place, `memrl.library.Library`; a shared store keeps them through
    `memrl.library.store.ChromaLibraryStore`, which writes here."""

    def __init__(self, index: VectorIndex, embedder: Embedder) -> None:
        super().__init__(index, embedder, LessonRecord)

    def active(self) -> list[LessonRecord]:
        return self.all(where={"status": "active"})


class CaseMemory(RecordCollection[CaseRecord]):
    """Case memory: past tasks with their plan or trajectory, outcome and reward."""

    def __init__(self, index: VectorIndex, embedder: Embedder) -> None:
        super().__init__(index, embedder, CaseRecord)


class SubtaskMemory(RecordCollection[SubtaskRecord]):
    """Subtask memory: subtasks of decomposed tasks and their results."""

    def __init__(self, index: VectorIndex, embedder: Embedder) -> None:
        super().__init__(index, embedder, SubtaskRecord)


class ToolMemory(RecordCollection[ToolCallRecord]):
    """Tool memory: tool calls with an argument summary, outcome, error and latency."""

    def __init__(self, index: VectorIndex, embedder: Embedder) -> None:
        super().__init__(index, embedder, ToolCallRecord)


class Memory:
    """The four stores of one namespace on one backend."""

    def __init__(self, backend: VectorBackend, embedder: Embedder, namespace: str = "default") -> None:
        if not _NAMESPACE.fullmatch(namespace):
            raise ConfigError(
                f"memory namespace {namespace!r} is invalid: use 1-63 letters, digits or '_', starting with a letter or digit"
            )
        self.backend, self.embedder, self.namespace = backend, embedder, namespace

        def idx(kind: str) -> VectorIndex:
            return backend.open_index(index_name(namespace, kind), embedder)

        self.experience = ExperienceLibrary(idx(LessonRecord.kind), embedder)
        self.cases = CaseMemory(idx(CaseRecord.kind), embedder)
        self.subtasks = SubtaskMemory(idx(SubtaskRecord.kind), embedder)
        self.tools = ToolMemory(idx(ToolCallRecord.kind), embedder)

    def stores(self) -> dict[str, RecordCollection[Any]]:
        """kind -> store, for export, import and stats."""
        return {s.record_type.kind: s for s in (self.experience, self.cases, self.subtasks, self.tools)}

    def __repr__(self) -> str:
        return f"Memory({self.backend.location!r}, namespace={self.namespace!r}, embedder={self.embedder.name!r})"


def open_backend(location: str | Path, index: IndexSettings | None = None) -> VectorBackend:
    """`http(s)://host:port` -> a chroma server; `:memory:` -> process memory; anything else -> a chroma directory.
    `index`: HNSW and exact-search settings of chroma collections (ignored in process memory, always exact)."""
    loc = str(location)
    if loc == ":memory:":
        from memrl.memory.testing import InMemoryBackend

        return InMemoryBackend()
    from memrl.memory.chroma import ChromaBackend

    return ChromaBackend(loc, index)


def open_memory(
    location: str | Path | VectorBackend,
    *,
    embedder: Embedder | str | None = None,
    namespace: str = "default",
    index: IndexSettings | None = None,
) -> Memory:
    """Open (creating where needed) the memory at a directory, a chroma server URL, or `:memory:`.

    `embedder` is an `Embedder`, a name for `make_embedder` (`minilm-l6-v2-int8`, `litellm/<model>`,
    `hash-<dim>`), or None for the offline default. Opening stores written with another embedder raises
    `ConfigError`. `index` sets how chroma collections search (`IndexSettings`: HNSW `search_ef`,
    `construction_ef`, `m`, and `exact_below`); an existing collection keeps its build settings.
    """
    from memrl.memory.embed import make_embedder

    emb = make_embedder(embedder) if embedder is None or isinstance(embedder, str) else embedder
    backend = location if not isinstance(location, (str, Path)) else open_backend(location, index)
    return Memory(backend, emb, namespace)
