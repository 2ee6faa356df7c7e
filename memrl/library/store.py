"""Where a lesson library is kept: the `LibraryStore` Protocol, a run folder, and a shared chroma store.

- `JsonFolderStore`: a run folder (`library.json`, `library/vNNNN.json`, `library.md`), as `memrl run` writes
  it. **One writer**: a save refuses to overwrite a `library.json` that changed since this store read or wrote
  it, but two processes saving at the same moment are not detected.
- `ChromaLibraryStore`: the lessons in a memory's experience store (the retrieval index), plus a ledger
  collection (`memrl-<namespace>-ledger`) that makes concurrent writers safe without a lock server:
  - ids: `id:L0017` is claimed with chroma `add`, which keeps the first row of an id and ignores later ones
    (no error); the claimer reads it back and owns the id only if the row names it. No id goes to two writers.
  - new lessons are written under their claimed ids; a changed lesson is written only by the first writer to
    claim `edit:<id>:<digest of the revision it replaces>`; a later writer's edit of the same revision is
    dropped and reported (`SaveReport.conflicts`), never written over the first.
  - counters (helpful, harmful, wins, losses, uses) are additive: each writer upserts only its own record
    (`count:<writer>`: its increments per lesson), and a read sums them over writers on top of each lesson's
    base (zero for claimed lessons; `base:<id>`, written once, for lessons from before the ledger). The
    counters on the experience records are a view as of their last write, not the totals.
  On a chroma server every process may write. An embedded chroma directory is not safe to share between
  processes (their views go stale), so its first write takes a lock file and a second process gets an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from memrl.errors import ConfigError
from memrl.library.core import Library
from memrl.memory.records import LessonRecord
from memrl.memory.store import Memory, index_name

__all__ = ["COUNTERS", "ChromaLibraryStore", "JsonFolderStore", "LibraryStore", "SaveReport"]

log = logging.getLogger(__name__)

#: The additive counters of a lesson.
COUNTERS = ("helpful", "harmful", "wins", "losses", "uses")
_NUMBERED = re.compile(r"L(\d+)")


class SaveReport(BaseModel):
    """What one `save` wrote."""

    written: list[str] = Field(default_factory=list, description="Ids of lessons written (new or changed).")
    conflicts: list[str] = Field(
        default_factory=list, description="Changed lessons not written: another writer changed them first."
    )
    counted: int = Field(default=0, description="Counter increments recorded.")


@runtime_checkable
class LibraryStore(Protocol):
    """Where a `Library` is kept. `shared`: whether several processes may write it at once."""

    shared: bool

    def load(self) -> Library:
        """The current library; its `baseline` is what was read, so `save` writes only the changes."""
        ...

    def save(self, library: Library) -> SaveReport:
        """Write what changed since `library.baseline`: new and changed lessons, counter increments."""
        ...

    def new_id(self) -> str:
        """An id no other writer of this store gets (`load` sets it as the library's `id_source`)."""
        ...

    def add_counts(self, counts: Mapping[str, Mapping[str, int]]) -> None:
        """Add increments (lesson id -> counter -> n) without losing another writer's."""
        ...


def _deltas(library: Library) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for lid, rec in library.lessons.items():
        old = library.baseline.get(lid)
        d = {f: getattr(rec, f) - (getattr(old, f) if old else 0) for f in COUNTERS}
        if any(d.values()):
            out[lid] = {f: n for f, n in d.items() if n}
    return out


def _content(rec: LessonRecord) -> dict[str, Any]:
    """A lesson without its counters and usage stamps: what an edit changes."""
    data = rec.model_dump(mode="json", exclude={*COUNTERS, "updated_at", "last_used_at"})
    data["metadata"] = {k: v for k, v in data["metadata"].items() if k != "last_used_step"}
    return data


class JsonFolderStore:
    """A library in a run folder, through `Library.save` / `Library.load`. Single writer (see the module)."""

    shared = False

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._seen: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"JsonFolderStore({str(self.folder)!r})"

    def _fingerprint(self) -> str:
        path = self.folder / "library.json"
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""

    def load(self, version: int | None = None) -> Library:
        """The current library, or saved `version` (later versions are dropped: a resumed run rewrites them)."""
        with self._lock:
            lib = Library.load(self.folder, version=version)
            self._seen = self._fingerprint()
        lib.baseline = dict(lib.lessons)
        return lib

    def save(self, library: Library) -> SaveReport:
        with self._lock:
            if self._seen is not None and self._fingerprint() != self._seen:
                raise ConfigError(
                    f"{self.folder / 'library.json'} changed since this process read it: a run folder has one "
                    "writer. Load it again, or share a library between processes through a chroma server "
                    "(ChromaLibraryStore on open_memory('http://host:port'))"
                )
            counts = _deltas(library)
            old = library.baseline
            written = [
                k for k, v in library.lessons.items() if k not in old or _content(v) != _content(old[k])
            ]
            library.save(self.folder)
            self._seen = self._fingerprint()
        library.baseline = dict(library.lessons)
        return SaveReport(written=written, counted=sum(n for d in counts.values() for n in d.values()))

    def new_id(self) -> str:
        lib = self.load()
        lid = f"L{lib.next_id:04d}"
        lib.next_id += 1
        self.save(lib)
        return lid

    def add_counts(self, counts: Mapping[str, Mapping[str, int]]) -> None:
        lib = self.load()
        for lid, c in counts.items():
            if (rec := lib.lessons.get(lid)) is not None:
                lib.lessons[lid] = rec.model_copy(update={f: getattr(rec, f) + n for f, n in c.items()})
        self.save(lib)


_HELD: dict[str, IO[str]] = {}  # embedded chroma directories this process writes, with their lock files
_HELD_LOCK = threading.Lock()


def _lock_directory(path: Path) -> None:
    """One writing process per embedded chroma directory (a lock file held until the process exits)."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the one-writer rule is then only documented
        return
    key = str(path.resolve())
    with _HELD_LOCK:
        if key in _HELD:
            return
        f = open(path / "memrl-writer.lock", "a+")  # noqa: SIM115 - held for the life of the process
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            f.close()
            raise ConfigError(
                f"another process is writing lessons into the chroma directory {path}: an embedded chroma "
                "directory cannot be shared by writing processes (each would miss the other's writes). "
                f"Serve it with `chroma run --path {path}` and open http://host:port in every process"
            ) from e
        _HELD[key] = f


class ChromaLibraryStore:
    """The lessons of a `memrl.memory.Memory` (chroma directory or server), safe for concurrent writers."""

    shared = True

    def __init__(self, memory: Memory, *, writer: str | None = None) -> None:
        self.memory, self.experience = memory, memory.experience
        self.ledger = memory.backend.open_index(index_name(memory.namespace, "ledger"), memory.embedder)
        self.writer = writer or uuid.uuid4().hex[:16]
        self._vector = [1.0] + [0.0] * (int(memory.embedder.dim) - 1)  # ledger rows are fetched by id only
        self._lock = threading.RLock()
        self._next = 1
        self._mine: dict[str, Counter[str]] = {}  # this writer's increments, all of them (its count record)
        self._owned: set[str] = set()  # ids this writer claimed
        self._based: set[str] = set()  # lessons whose base is a ledger row (claimed, or `base:`)
        self._doc_base: dict[str, dict[str, int]] = {}  # the others: base = counters on their record
        loc = str(memory.backend.location)
        self._directory = None if loc == ":memory:" or loc.startswith(("http://", "https://")) else Path(loc)

    def __repr__(self) -> str:
        return f"ChromaLibraryStore({self.memory.backend.location!r}, namespace={self.memory.namespace!r})"

    # ------------------------------------------------------------------ reading
    def load(self) -> Library:
        records = self.experience.all()  # lessons before the ledger: a base row always precedes a view
        claims: set[str] = set()
        bases: dict[str, dict[str, int]] = {}
        sums: dict[str, Counter[str]] = {}
        for row in self.ledger.get():
            kind, _, key = row.id.partition(":")
            data = json.loads(row.document)
            if kind == "id":
                claims.add(key)
            elif kind == "base":
                bases[key] = data
            elif kind == "count":
                for lid, c in data.items():
                    sums.setdefault(lid, Counter()).update(c)
        lib = Library()
        for r in records:
            base = {} if r.id in claims else bases.get(r.id) or {f: getattr(r, f) for f in COUNTERS}
            total = Counter(base)
            total.update(sums.get(r.id, {}))
            lib.lessons[r.id] = r.model_copy(update={f: max(0, total[f]) for f in COUNTERS})
        numbers = [int(m.group(1)) for i in (*claims, *lib.lessons) if (m := _NUMBERED.fullmatch(i))]
        with self._lock:
            self._based |= claims | set(bases)
            self._doc_base.update(
                {r.id: {f: getattr(r, f) for f in COUNTERS} for r in records if r.id not in self._based}
            )
            self._next = max(self._next, max(numbers, default=0) + 1)
            lib.next_id = self._next
        lib.id_source = self.new_id
        lib.commit(note=f"read from {self!r}")
        lib.baseline = dict(lib.lessons)
        return lib

    # ------------------------------------------------------------------ writing
    def _claim(self, key: str) -> bool:
        """Whether this writer owns ledger row `key` (claimed now, or before)."""
        doc = json.dumps({"writer": self.writer})
        self.ledger.insert([key], [self._vector], [doc], [{"kind": key.partition(":")[0]}])
        rows = self.ledger.get(ids=[key])
        return bool(rows) and json.loads(rows[0].document).get("writer") == self.writer

    def _writing(self) -> None:
        if self._directory is not None:
            _lock_directory(self._directory)

    def new_id(self) -> str:
        with self._lock:
            self._writing()
            while True:
                lid = f"L{self._next:04d}"
                self._next += 1
                if self.experience.get(lid) is None and self._claim(f"id:{lid}"):
                    self._owned.add(lid)
                    self._based.add(lid)
                    return lid

    def _ensure_bases(self, ids: list[str]) -> None:
        """Before a lesson's counters change or its record is rewritten, its base is kept in the ledger."""
        todo = [lid for lid in dict.fromkeys(ids) if lid not in self._based and lid in self._doc_base]
        if todo:
            docs = [json.dumps(self._doc_base[lid]) for lid in todo]
            metas = [{"kind": "base"} for _ in todo]
            self.ledger.insert([f"base:{lid}" for lid in todo], [self._vector] * len(todo), docs, metas)
            self._based.update(todo)

    def add_counts(self, counts: Mapping[str, Mapping[str, int]]) -> None:
        if not counts:
            return
        with self._lock:
            self._writing()
            self._ensure_bases(list(counts))
            for lid, c in counts.items():
                self._mine.setdefault(lid, Counter()).update(dict(c))
            doc = json.dumps({lid: dict(c) for lid, c in self._mine.items()})
            key = f"count:{self.writer}"
            self.ledger.upsert([key], [self._vector], [doc], [{"kind": "count", "writer": self.writer}])

    def save(self, library: Library) -> SaveReport:
        base = library.baseline
        new = [r for lid, r in library.lessons.items() if lid not in base]
        changed = [
            r for lid, r in library.lessons.items() if lid in base and _content(r) != _content(base[lid])
        ]
        counts = _deltas(library)
        with self._lock:
            self._writing()
            for r in new:
                mine = r.id in self._owned or (
                    self.experience.get(r.id) is None and self._claim(f"id:{r.id}")
                )
                if not mine:
                    raise ConfigError(
                        f"lesson id {r.id} is taken in {self!r}: new lessons of a shared library need ids "
                        "from its store (ChromaLibraryStore.load() sets Library.id_source)"
                    )
                self._owned.add(r.id)
                self._based.add(r.id)
            self._ensure_bases([r.id for r in changed])
            self.add_counts(counts)
            won = [r for r in changed if self._claim(f"edit:{r.id}:{_digest(base[r.id])}")]
            conflicts = sorted({r.id for r in changed} - {r.id for r in won})
            if conflicts:
                log.warning(
                    "%s: kept another writer's edit of %s; this process's edit dropped", self, conflicts
                )
            self.experience.upsert([*new, *won])
        library.baseline = dict(library.lessons)
        return SaveReport(
            written=[r.id for r in [*new, *won]],
            conflicts=conflicts,
            counted=sum(n for d in counts.values() for n in d.values()),
        )


def _digest(rec: LessonRecord) -> str:
    return hashlib.sha256(json.dumps(_content(rec), sort_keys=True).encode()).hexdigest()[:16]
