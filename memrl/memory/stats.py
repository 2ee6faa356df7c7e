"""What a memory holds: counts, sizes, ages and usage per store, read without loading an embedding model."""

from __future__ import annotations

import re
import time
from pathlib import Path

from pydantic import BaseModel, ValidationError

from memrl.errors import ConfigError
from memrl.memory.base import VectorBackend
from memrl.memory.records import RECORD_TYPES, LessonRecord
from memrl.memory.store import open_backend

__all__ = ["StoreStats", "MemoryStats", "memory_stats"]

_NAME = re.compile(r"memrl-(?P<ns>[A-Za-z0-9_]+)-(?P<kind>[a-z]+)")


class StoreStats(BaseModel):
    """One store (one chroma collection)."""

    collection: str
    namespace: str
    kind: str
    embedder: str | None
    dim: int | None
    count: int
    text_bytes: int = 0  # UTF-8 bytes of the embedded texts
    record_bytes: int = 0  # UTF-8 bytes of the stored record JSON
    vector_bytes: int = 0  # count * dim * 4 (float32)
    approx_tokens: int = 0  # text characters / 4
    oldest_age_s: float | None = None
    newest_age_s: float | None = None
    uses: int = 0
    never_used: int = 0
    helpful: int | None = None  # experience library only
    harmful: int | None = None
    active: int | None = None
    invalid: int = 0  # documents that do not parse as records


class MemoryStats(BaseModel):
    location: str
    disk_bytes: int | None  # size of the directory; None for a server
    stores: list[StoreStats]
    other_collections: list[str]

    @property
    def total_records(self) -> int:
        return sum(s.count for s in self.stores)


def _store_stats(backend: VectorBackend, name: str, ns: str, kind: str, now: float) -> StoreStats:
    index = backend.existing_index(name)
    meta = index.metadata
    dim = meta.get("memrl_dim")
    rows = index.get()
    st = StoreStats(
        collection=name,
        namespace=ns,
        kind=kind,
        embedder=meta.get("memrl_embedder"),
        dim=int(dim) if dim is not None else None,
        count=len(rows),
    )
    st.vector_bytes = st.count * (st.dim or 0) * 4
    rtype = RECORD_TYPES[kind]
    created: list[float] = []
    chars = 0
    lessons: list[LessonRecord] = []
    for row in rows:
        st.record_bytes += len(row.document.encode())
        try:
            rec = rtype.model_validate_json(row.document)
        except ValidationError:
            st.invalid += 1
            continue
        text = rec.embed_text()
        chars += len(text)
        st.text_bytes += len(text.encode())
        created.append(rec.created_at)
        st.uses += rec.uses
        st.never_used += rec.uses == 0
        if isinstance(rec, LessonRecord):
            lessons.append(rec)
    st.approx_tokens = round(chars / 4)
    if created:
        st.oldest_age_s, st.newest_age_s = now - min(created), now - max(created)
    if kind == LessonRecord.kind:
        st.helpful = sum(r.helpful for r in lessons)
        st.harmful = sum(r.harmful for r in lessons)
        st.active = sum(r.status == "active" for r in lessons)
    return st


def _disk_bytes(location: str) -> int | None:
    path = Path(location)
    if location.startswith(("http://", "https://")) or not path.is_dir():
        return None
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def memory_stats(location: str | Path | VectorBackend) -> MemoryStats:
    """Stats of every memrl store at a directory, a chroma server URL, or an open backend."""
    if isinstance(location, (str, Path)):
        loc = str(location)
        if not loc.startswith(("http://", "https://")) and not (Path(loc) / "chroma.sqlite3").is_file():
            raise ConfigError(f"no memory directory at {loc} (a memory directory holds chroma.sqlite3)")
        backend = open_backend(loc)
    else:
        backend = location
    now = time.time()
    stores, others = [], []
    for name in backend.index_names():
        m = _NAME.fullmatch(name)
        if m and m["kind"] in RECORD_TYPES:
            stores.append(_store_stats(backend, name, m["ns"], m["kind"], now))
        else:
            others.append(name)
    return MemoryStats(
        location=backend.location,
        disk_bytes=_disk_bytes(backend.location),
        stores=stores,
        other_collections=others,
    )
