"""The experience library: lessons with stable ids, counters, edit lineage, versions, rollback and diffs.

- Ids (`L0001`, `L0002`, …) are handed out once and never re-numbered or reused; a deleted lesson is
  retired, not erased, so its lineage and provenance survive.
- Every edit is recorded in a networkx lineage graph over lesson *revisions* (`L0003@2`):
  `derived-from` (an UPDATE's new text from the old one) and `merged-into` (a near-duplicate folded into
  another lesson).
- `commit()` closes a version; every version is saved as a snapshot, so `rollback(v)` restores it exactly
  and `diff(a, b)` lists added, changed and deleted lessons.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import BaseModel, Field

from memrl.errors import ConfigError
from memrl.memory.records import LessonRecord, MetaValue
from memrl.runs import atomic_write

__all__ = ["Library", "LibraryDiff", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


class LibraryDiff(BaseModel):
    a: int
    b: int
    added: list[LessonRecord] = Field(default_factory=list)
    changed: list[tuple[LessonRecord, LessonRecord]] = Field(default_factory=list)
    deleted: list[LessonRecord] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.added or self.changed or self.deleted)


def _rev(lesson: LessonRecord) -> str:
    return f"{lesson.id}@{lesson.version}"


class Library:
    """The mutable current library plus its saved versions (in memory; `save`/`load` persist them)."""

    def __init__(self) -> None:
        self.lessons: dict[str, LessonRecord] = {}
        self.next_id = 1
        self.version = 0
        self.graph = nx.DiGraph()
        self.versions: dict[int, dict[str, Any]] = {0: self._state()}
        #: Where new ids come from; a shared store sets it so no two processes hand out the same id.
        self.id_source: Callable[[], str] | None = None
        #: The lessons as last read from or written to a store (`memrl.library.store`): it saves the changes.
        self.baseline: dict[str, LessonRecord] = {}

    def copy(self) -> Library:
        """An independent copy to edit (records are immutable and committed versions never change, so only
        the containers are copied)."""
        other = Library.__new__(Library)
        other.lessons, other.next_id, other.version = dict(self.lessons), self.next_id, self.version
        other.graph, other.versions = self.graph.copy(), dict(self.versions)
        other.id_source, other.baseline = self.id_source, dict(self.baseline)
        return other

    def restore(self, snapshot: Library) -> None:
        """Undo the edits made since `snapshot` (a `copy()` of this library), in place. Ids handed out since
        are not handed out again."""
        self.lessons, self.graph = dict(snapshot.lessons), snapshot.graph.copy()

    # ------------------------------------------------------------------ reading
    def active(self) -> list[LessonRecord]:
        return [lesson for lesson in self.lessons.values() if lesson.status == "active"]

    def texts(self) -> list[str]:
        return [lesson.text for lesson in self.active()]

    def get(self, lesson_id: str) -> LessonRecord | None:
        return self.lessons.get(lesson_id)

    def __len__(self) -> int:
        return len(self.active())

    # ------------------------------------------------------------------ editing
    def add(
        self,
        text: str,
        *,
        step: int,
        sources: list[str] | None = None,
        advantage: float | None = None,
        rare_success: bool = False,
    ) -> LessonRecord:
        meta: dict[str, MetaValue] = {"advantage": round(advantage, 6)} if advantage is not None else {}
        if rare_success:
            meta["rare_success"] = True
        lesson = LessonRecord(
            id=self.id_source() if self.id_source else f"L{self.next_id:04d}",
            text=text,
            created_step=step,
            source_rollouts=list(sources or []),
            metadata=meta,
        )
        self.next_id += 1
        self.lessons[lesson.id] = lesson
        self.graph.add_node(_rev(lesson), lesson=lesson.id, text=text, step=step)
        return lesson

    def update(
        self, lesson_id: str, text: str, *, step: int, sources: list[str] | None = None
    ) -> LessonRecord:
        old = self._require_active(lesson_id)
        new = old.model_copy(
            update={
                "text": text,
                "version": old.version + 1,
                "source_rollouts": sorted({*old.source_rollouts, *(sources or [])}),
            }
        )
        self.lessons[lesson_id] = new
        self.graph.add_node(_rev(new), lesson=lesson_id, text=text, step=step)
        self.graph.add_edge(_rev(new), _rev(old), kind="derived-from", step=step)
        return new

    def delete(self, lesson_id: str, *, step: int) -> LessonRecord:
        old = self._require_active(lesson_id)
        self.lessons[lesson_id] = old.model_copy(update={"status": "retired"})
        self.graph.nodes[_rev(old)]["retired_step"] = step
        return self.lessons[lesson_id]

    def merge(self, source_id: str, into_id: str, *, step: int) -> LessonRecord:
        """Fold `source_id` into `into_id`: the source retires, its provenance and counters move over."""
        src, dst = self._require_active(source_id), self._require_active(into_id)
        merged = dst.model_copy(
            update={
                "source_rollouts": sorted({*dst.source_rollouts, *src.source_rollouts}),
                "helpful": dst.helpful + src.helpful,
                "harmful": dst.harmful + src.harmful,
                "wins": dst.wins + src.wins,
                "losses": dst.losses + src.losses,
            }
        )
        self.lessons[into_id] = merged
        self.lessons[source_id] = src.model_copy(update={"status": "retired"})
        self.graph.add_edge(_rev(src), _rev(dst), kind="merged-into", step=step)
        return merged

    def support(self, lesson_id: str, sources: list[str]) -> LessonRecord:
        """More rollouts back an existing lesson (a duplicate ADD folded into it); the text is unchanged."""
        old = self._require_active(lesson_id)
        self.lessons[lesson_id] = old.model_copy(
            update={"source_rollouts": sorted({*old.source_rollouts, *sources})}
        )
        return self.lessons[lesson_id]

    def count_use(self, lesson_ids: list[str], *, correct: bool, step: int | None = None) -> None:
        """A rollout with these lessons in its prompt was judged right (helpful) or wrong (harmful)."""
        for lid in lesson_ids:
            lesson = self.lessons.get(lid)
            if lesson is None:
                continue
            field = "helpful" if correct else "harmful"
            update: dict[str, object] = {field: getattr(lesson, field) + 1, "uses": lesson.uses + 1}
            if step is not None:
                update["metadata"] = {**lesson.metadata, "last_used_step": step}
            self.lessons[lid] = lesson.model_copy(update=update)

    def count_contrast(self, shown: list[list[str]], rewards: list[float]) -> dict[str, int]:
        """One group's paired evidence: for every lesson some rollouts were shown and others were not, a win
        when the rollouts shown it scored higher on average, a loss when lower. Unlike helpful/harmful, this
        compares like with like (same question, same step), so a hard task does not make every lesson look
        harmful. Returns lesson id -> +1 (win) or -1 (loss)."""
        out: dict[str, int] = {}
        for lid in dict.fromkeys(x for ids in shown for x in ids):
            lesson = self.lessons.get(lid)
            with_ = [r for ids, r in zip(shown, rewards, strict=True) if lid in ids]
            without = [r for ids, r in zip(shown, rewards, strict=True) if lid not in ids]
            if lesson is None or not with_ or not without:
                continue
            diff = sum(with_) / len(with_) - sum(without) / len(without)
            if abs(diff) < 1e-9:
                continue
            field = "wins" if diff > 0 else "losses"
            self.lessons[lid] = lesson.model_copy(update={field: getattr(lesson, field) + 1})
            out[lid] = 1 if diff > 0 else -1
        return out

    def _require_active(self, lesson_id: str) -> LessonRecord:
        lesson = self.lessons.get(lesson_id)
        if lesson is None or lesson.status != "active":
            raise KeyError(lesson_id)
        return lesson

    # ------------------------------------------------------------------ versions
    def _state(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "version": self.version,
            "next_id": self.next_id,
            "lessons": [lesson.model_dump(mode="json") for lesson in self.lessons.values()],
            "lineage": nx.node_link_data(self.graph, edges="edges"),
        }

    def commit(self, note: str = "") -> int:
        """Close the current version; returns its number."""
        self.version += 1
        state = self._state()
        state["note"] = note
        self.versions[self.version] = state
        return self.version

    def lessons_at(self, version: int) -> dict[str, LessonRecord]:
        if version not in self.versions:
            raise ConfigError(f"library version {version} does not exist (known: 0–{max(self.versions)})")
        return {d["id"]: LessonRecord.model_validate(d) for d in self.versions[version]["lessons"]}

    def rollback(self, version: int) -> int:
        """Make `version`'s lessons current again, exactly; recorded as a new version. Ids are not reused."""
        self.lessons = self.lessons_at(version)
        self.graph = nx.node_link_graph(self.versions[version]["lineage"], edges="edges")
        return self.commit(note=f"rollback to version {version}")

    def diff(self, a: int, b: int) -> LibraryDiff:
        la, lb = self.lessons_at(a), self.lessons_at(b)
        act_a = {k: v for k, v in la.items() if v.status == "active"}
        act_b = {k: v for k, v in lb.items() if v.status == "active"}
        return LibraryDiff(
            a=a,
            b=b,
            added=[v for k, v in act_b.items() if k not in act_a],
            deleted=[v for k, v in act_a.items() if k not in act_b],
            changed=[(act_a[k], v) for k, v in act_b.items() if k in act_a and act_a[k].text != v.text],
        )

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> None:
        """`library.json` (current), `library.md` (readable) and `library/vNNNN.json` for every version."""
        folder = Path(folder)
        for v, state in self.versions.items():
            p = folder / "library" / f"v{v:04d}.json"
            if not p.exists() or v == self.version:
                atomic_write(p, json.dumps(state, indent=1))
        atomic_write(
            folder / "library.json",
            json.dumps(self._state() | {"saved_versions": sorted(self.versions)}, indent=1),
        )
        atomic_write(folder / "library.md", self.to_markdown())

    @classmethod
    def load(cls, folder: str | Path, version: int | None = None) -> Library:
        folder = Path(folder)
        lib = cls()
        vdir = folder / "library"
        for p in sorted(vdir.glob("v*.json")) if vdir.is_dir() else []:
            state = json.loads(p.read_text())
            lib.versions[int(state["version"])] = state
        current = folder / "library.json"
        if current.exists():
            state = json.loads(current.read_text())
        elif lib.versions:
            state = lib.versions[max(lib.versions)]
        else:
            return lib
        if version is not None:
            state = lib.versions.get(version) or _missing(version, lib)
            # Later versions belong to a step that is about to run again: they will be rewritten.
            lib.versions = {v: s for v, s in lib.versions.items() if v <= version}
        lib._set_state(state)
        return lib

    @classmethod
    def from_export(cls, path: str | Path) -> Library:
        data = json.loads(Path(path).read_text())
        if int(data.get("schema_version", 0)) > SCHEMA_VERSION:
            raise ConfigError(
                f"{path}: library schema {data['schema_version']} is newer than this memrl understands"
            )
        lib = cls()
        lib._set_state(data)
        lib.versions = {lib.version: lib._state()}
        return lib

    def _set_state(self, state: dict[str, Any]) -> None:
        self.version = int(state["version"])
        self.next_id = int(state["next_id"])
        self.lessons = {d["id"]: LessonRecord.model_validate(d) for d in state["lessons"]}
        self.graph = (
            nx.node_link_graph(state["lineage"], edges="edges") if state.get("lineage") else nx.DiGraph()
        )

    def export(self, path: str | Path) -> Path:
        """A deployable export: JSON with a schema version (active lessons, provenance) plus markdown."""
        path = Path(path)
        data = self._state()
        data["lessons"] = [lesson.model_dump(mode="json") for lesson in self.active()]
        atomic_write(path, json.dumps(data, indent=1))
        atomic_write(path.with_suffix(".md"), self.to_markdown())
        return path

    def to_markdown(self) -> str:
        lines = [f"# Experience library — version {self.version}", "", f"{len(self)} active lessons.", ""]
        for lesson in self.active():
            lines.append(
                f"- **{lesson.id}** (v{lesson.version}, step {lesson.created_step}, "
                f"+{lesson.helpful}/−{lesson.harmful}, won/lost {lesson.wins}/{lesson.losses}): {lesson.text}"
            )
        return "\n".join(lines) + "\n"


def _missing(version: int, lib: Library) -> dict[str, Any]:
    raise ConfigError(f"library version {version} was not saved (saved: {sorted(lib.versions)})")
