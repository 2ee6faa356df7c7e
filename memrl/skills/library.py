"""Verified skills: functions cut from the policy's own programs that produced a verified answer on a
training item, kept with the training items they solved, shown and preloaded in the sandbox.

Life of a skill. A rollout whose program printed a verified answer offers itself with its data lifted into
parameters, or else the functions its top level called (`skill_source`): a *candidate*, never from a
held-out item. Candidates are shown and preloaded in training rollouts of other items; a rollout that calls
one of the skill's functions (without redefining it) counts for it when verified right and against it when
wrong. A candidate that solved `skills.verify_items` training items other than its own, and failed no more
often than it solved, becomes *trusted*; only trusted skills reach held-out items (one whose record falls
below that goes back to candidate). A skill that failed `skills.retire_failures` times with fewer than one
success in three is *retired*. A lifted skill is shown with its origin question and the call that solved it
(`print_answer(grid=[[1, None], ...])`): on mini_sudoku, a 1.5B model shown the function alone passed
made-up filled-in grids instead of the question's own.

Checkpoints: one file per finished step (`skills/step-NNNN.json`), so a killed step starts again from the
skills of the step before it and counts nothing twice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from memrl.act import Preload
from memrl.errors import ConfigError
from memrl.memory.vectors import LessonVectors
from memrl.runs import atomic_write
from memrl.skills.source import calls, skill_source
from memrl.spec import SkillSpec
from memrl.types import Completion, Item

__all__ = ["Skill", "SkillLibrary"]

log = logging.getLogger(__name__)


class Skill(BaseModel):
    id: str
    name: str
    signature: str
    doc: str = ""
    code: str
    names: list[str]
    origin: str  # the training item whose verified program it came from
    question: str  # that item's question (what retrieval compares with)
    example: str = ""  # the origin program's own call, its data written out (lifted skills)
    step: int
    solved: list[str] = Field(default_factory=list)  # other training items it solved
    failed: list[str] = Field(default_factory=list)
    status: Literal["candidate", "trusted", "retired"] = "candidate"

    @property
    def utility(self) -> float:
        return (len(self.solved) + 1) / (len(self.solved) + len(self.failed) + 2)


def _norm(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())


def _last_program(c: Completion) -> tuple[str | None, bool]:
    """The last program an answer ran and whether it ran and printed."""
    for s in reversed(c.steps or []):
        if s.code is not None:
            return s.code, s.ok
    return None, False


class SkillLibrary:
    def __init__(
        self, folder: Path, cfg: SkillSpec, *, held_out: list[Item], vectors: LessonVectors | None
    ) -> None:
        self.folder, self.cfg, self.vectors = folder, cfg, vectors
        self.held_out = {it.id for it in held_out}
        self.skills: list[Skill] = []

    def __len__(self) -> int:
        return len(self.skills)

    # ---------------------------------------------------------------- learning

    def learn(self, item: Item, shown: list[Skill], c: Completion, correct: bool, step: int) -> str | None:
        """Count one judged training rollout for the skills it called, and offer a new candidate from its
        program when it was right. Returns the id of a new candidate, if any."""
        if item.id in self.held_out:
            return None
        code, ran = _last_program(c)
        if code is None:
            return None
        used, _ = self._count(shown, code, correct, item.id)
        if not (correct and ran) or used:
            return None
        src = skill_source(code)
        if src is None:
            return None
        same = next((s for s in self.skills if _norm(s.code) == _norm(src.code)), None)
        if same is not None:  # the same functions solved another item: that verifies them
            if item.id != same.origin and item.id not in same.solved:
                same.solved.append(item.id)
                self._update(same)
            return None
        skill = Skill(
            id=f"k{len(self.skills) + 1}", name=src.entry, signature=src.signature, doc=src.doc, code=src.code,
            names=list(src.names), origin=item.id, question=item.question, example=src.example, step=step,
        )  # fmt: skip
        self.skills.append(skill)
        return skill.id

    def _count(
        self, shown: list[Skill], code: str, correct: bool, source: str
    ) -> tuple[set[str], list[Skill]]:
        """Count one judged program for the shown skills it called (not for a skill's own origin); returns
        the names of shown functions it called and the skills counted."""
        used = calls(code, [n for s in shown for n in s.names])
        counted = [s for s in shown if set(s.names) & used and source != s.origin]
        for s in counted:
            (s.solved if correct else s.failed).append(source)
            self._update(s)
        return used, counted

    def count_use(self, ids: list[str], code: str, correct: bool, source: str) -> list[str]:
        """Count a judged program from outside learning (a deployed `MemoryPolicy`) for the skills of `ids`
        that it called, under the rules of learning: a skill whose record falls below trusted goes back to
        candidate and is no longer deployed; one that keeps failing is retired. Returns the ids counted."""
        _, counted = self._count([s for s in self.skills if s.id in ids], code, correct, source)
        return [s.id for s in counted]

    def _update(self, s: Skill) -> None:
        """Retired: failed `retire_failures` times with under one success in three (final). Trusted: solved
        `verify_items` other training items and, counting every call, failed no more often than it solved; a
        trusted skill whose record falls below that goes back to candidate (shown while learning, never to a
        held-out item)."""
        if s.status == "retired":
            return
        if len(s.failed) >= self.cfg.retire_failures and len(s.solved) * 2 < len(s.failed):
            s.status = "retired"
        elif len(set(s.solved)) >= self.cfg.verify_items and len(s.solved) >= len(s.failed):
            s.status = "trusted"
        else:
            s.status = "candidate"

    # ---------------------------------------------------------------- using

    def select(self, item: Item, *, trusted_only: bool) -> list[Skill]:
        """The skills shown and preloaded for one item: trusted ones (and, while learning, candidates from
        other items), one per function name, the most similar first, then the most useful."""
        pool = [
            s for s in self.skills
            if s.status == "trusted" or (not trusted_only and s.status == "candidate" and s.origin != item.id)
        ]  # fmt: skip
        if not pool:
            return []
        if self.vectors is not None:
            sims = self.vectors.of([s.question for s in pool]) @ self.vectors.of([item.question])[0]
        else:
            sims = np.zeros(len(pool))
        ranked = sorted(
            zip(pool, sims, strict=True),
            key=lambda p: (p[0].status != "trusted", -float(p[1]), -p[0].utility),
        )
        out: list[Skill] = []
        for s, _ in ranked:
            if s.name not in {o.name for o in out} and not set(s.names) & {n for o in out for n in o.names}:
                out.append(s)
            if len(out) == self.cfg.k:
                break
        return out

    def preload(self, skills: list[Skill]) -> Preload:
        return Preload(code="\n\n".join(s.code for s in skills), names=tuple(s.signature for s in skills))

    def render(self, skills: list[Skill]) -> str:
        """The memory text for these skills: their code when short, else signature and first doc line."""
        if not skills:
            return ""
        parts = ["Functions already defined in your Python sandbox (each solved other problems like this one; "
                 "call them instead of rewriting them):"]  # fmt: skip
        for s in skills:
            record = f"# {s.signature}: verified on {len(s.solved) + 1} training problems"
            body = s.code if len(s.code) <= self.cfg.show_chars else f"def {s.signature}: ...  # {s.doc}"
            parts.append(f"```python\n{record}\n{body.rstrip()}\n```")
            if s.example:  # how a question's data become the arguments: the origin question and its call
                parts.append(f"It solved this problem:\n{s.question.strip()}\nwith this call, the problem's data "
                             f"written out as arguments:\n```python\n{s.example}\n```")  # fmt: skip
        return "\n".join(parts)

    # ---------------------------------------------------------------- persistence

    def _json(self) -> str:
        return "[" + ",\n".join(s.model_dump_json() for s in self.skills) + "]\n"

    def checkpoint(self, step: int) -> None:
        data = self._json()
        atomic_write(self.folder / f"step-{step:04d}.json", data)
        atomic_write(self.folder / "skills.json", data)

    def save(self, path: Path) -> Path:
        """Write every skill with its record (all statuses) to `path` (a `skills.json`), atomically."""
        atomic_write(path, self._json())
        return path

    def restore(self, step: int) -> None:
        path = self.folder / f"step-{step:04d}.json"
        self.skills = [] if step == 0 or not path.exists() else _read(path)

    @classmethod
    def deployed(cls, path: Path, cfg: SkillSpec, *, vectors: LessonVectors | None = None) -> SkillLibrary:
        """The trusted skills of a `skills.json` or of a run directory's `skills/skills.json`, for use after
        learning: candidates and retired skills are left out, so they never reach a deployed prompt or sandbox."""
        if path.is_dir():
            path = path / "skills" / "skills.json"
        if not path.is_file():
            raise ConfigError(
                f"no verified skills at {str(path)!r}: expected a skills.json or a run directory"
            )
        lib = cls(path.parent, cfg, held_out=[], vectors=vectors)
        lib.skills = [s for s in _read(path) if s.status == "trusted"]
        return lib


def _read(path: Path) -> list[Skill]:
    import json

    return [Skill.model_validate(d) for d in json.loads(path.read_text(encoding="utf-8"))]
