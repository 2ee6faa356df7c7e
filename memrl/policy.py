"""MemoryPolicy: the object an existing agent app embeds to gain learned memory without touching weights.

    policy = MemoryPolicy.load("runs/quickstart")      # a run dir, a library export (.json), a chroma dir or URL
    messages = policy.augment(messages)                 # lessons (and cases) placed exactly as in learning
    policy.record(task, trajectory, reward)             # an outcome; thread- and asyncio-safe
    policy.learn()                                      # one Training-Free GRPO update over recorded groups
    code = policy.preload(query).code                   # a run's verified skills: define before the model's program

What goes into the prompt comes from the injection path learning used (`memrl.inject.build_memory`: lessons
chosen by the `diversity` settings — relevance and MMR by default — then lessons and cases packed and
rendered), placed where the run placed it (system prompt by default), within `token_budget` tokens. Tokens are *estimated* by
`approx_tokens` (no tokenizer is loaded): pass `count_tokens=` for an exact count with your model's tokenizer.

Verified skills (a run with `tfgrpo.skills`; `memrl.skills`): only trusted ones are deployed. The memory of a
query ends with the skills chosen for it as the run's held-out evaluation chose them (`SkillLibrary.select`,
similarity by the policy's embedder), outside `token_budget` as in the run; the memory tells the model they
are already defined, so an app that runs the model's Python must define `preload(query).code` first (with
`memrl.act.Actor` pass it as `preload=`).

`learn()` groups recorded outcomes by query; a group of at least `min_group` outcomes whose rewards differ
(`memrl.library.has_advantage`, the rule `memrl run` uses) goes through the same learner calls
(`learn_from_group`) and the same curation path (`memrl.library.curate`: reconcile, the learner's judgement of
near-equal lessons, edit bounds, size cap, dedup, pruning by paired evidence) as `memrl run` with
`algorithm: tfgrpo`, with the `diversity` settings given, and the library gets a new version. All-equal
groups carry no advantage and are dropped, as in the paper. Every outcome is also handed to the case retriever (case
writes, and Q updates for a parametric one). Learning runs on the policy's own event loop thread, so the
sync `learn()` works inside or outside a running loop and the learner model always sees one loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from memrl.act import Preload
from memrl.cases import CaseRetriever, SimilarityCases
from memrl.errors import ConfigError
from memrl.inject import Injection, LessonVectors, approx_tokens, build_memory, render_case
from memrl.inject.place import Placement, inject, query_text, trajectory_lines
from memrl.library import Library, curate, has_advantage
from memrl.library.specifics import task_terms
from memrl.library.store import ChromaLibraryStore, LibraryStore
from memrl.llm.base import LLM
from memrl.loop_thread import LoopThread
from memrl.memory.base import Embedder
from memrl.memory.records import CaseRecord
from memrl.memory.store import Memory
from memrl.policy_cases import CaseSource, LearnResult, Outcome
from memrl.policy_learn import deployed_skills, group_outcomes, lesson_vectors, propose, resolve_learner
from memrl.skills import Skill, SkillLibrary
from memrl.spec import DiversitySpec, ModelSpec, TFGRPOSpec
from memrl.types import Item, question_key

__all__ = [
    "MemoryPolicy",
    "Injection",
    "Outcome",
    "LearnResult",
    "CaseRetriever",
    "CaseSource",
    "Preload",
    "SimilarityCases",
    "approx_tokens",
    "render_case",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class MemoryPolicy:
    """Learned memory for an existing agent app: `augment` prompts, `record` outcomes, `learn` from them.

    Where memory comes from:
      `library`      the lessons (None and no `memory`: an empty library, learned from scratch).
      `memory`       a `memrl.memory.Memory`; with `library=None` its experience store holds the lessons (a
                     chroma directory or server shared by processes, re-read every `refresh_s` seconds), and
                     cases are retrieved from its case store by similarity.
      `cases`        a `CaseRetriever` (e.g. `mode="q"`: ranked by a utility learned from the rewards of the
                     outcomes each case was shown to) or any `CaseSource`; `max_cases` per prompt.
      `skills`       verified skills: a `skills.json` (or a run directory holding `skills/skills.json`) or a
                     `SkillLibrary`; only trusted skills are shown (`tfgrpo.skills.k` per query) and preloaded.
    What is injected: `placement` (`system` | `user`, as in learning), `token_budget` (estimated with
      `count_tokens`), `max_lessons`.
    Learning: `learner` (an `LLM`, `ModelSpec` or model string such as `"local"`) with `tfgrpo` and
      `diversity` settings (`embedder`: for lesson similarity; the memory's, else the offline default);
      groups of `min_group`..`max_group` outcomes of one query; `correct` is `reward >= success_threshold`
      unless given; `learn_every` N outcomes starts a background update; `save_to` (a `.json` export or a
      folder) is rewritten after each update that changed the library; `outcomes_path` logs every outcome
      as a JSON line; at most `max_waiting` outcomes wait for their group to fill (the oldest go first).
    """

    def __init__(
        self,
        library: Library | None = None,
        *,
        memory: Memory | None = None,
        cases: CaseSource | None = None,
        skills: SkillLibrary | str | Path | None = None,
        learner: LLM | ModelSpec | str | None = None,
        tfgrpo: TFGRPOSpec | None = None,
        diversity: DiversitySpec | None = None,
        embedder: Embedder | str | None = None,
        placement: Placement = "system",
        token_budget: int = 1024,
        max_lessons: int | None = None,
        max_cases: int = 2,
        min_group: int = 2,
        max_group: int = 8,
        success_threshold: float = 0.5,
        learn_every: int | None = None,
        save_to: str | Path | None = None,
        outcomes_path: str | Path | None = None,
        count_tokens: Callable[[str], int] = approx_tokens,
        case_render: Callable[[CaseRecord], str] = render_case,
        refresh_s: float = 5.0,
        max_waiting: int = 10_000,
    ) -> None:
        if placement not in ("system", "user"):
            raise ConfigError(f"placement must be 'system' or 'user', got {placement!r}")
        if min_group < 2 or max_group < min_group:
            raise ConfigError("a learning group needs 2 <= min_group <= max_group outcomes")
        self._store: LibraryStore | None = ChromaLibraryStore(memory) if library is None and memory else None
        self.library = library if library is not None else Library()
        self.cases = cases or (SimilarityCases(memory.cases) if memory is not None else None)
        self.learner, self.tfgrpo = learner, tfgrpo or TFGRPOSpec()
        self.diversity = diversity or DiversitySpec()
        self._embedder: Embedder | str | None = embedder or (memory.embedder if memory is not None else None)
        self._vectors: LessonVectors | None = None
        self.skill_library = deployed_skills(skills, self.tfgrpo)
        self.placement: Placement = placement
        self.token_budget, self.max_lessons, self.max_cases = token_budget, max_lessons, max_cases
        self.min_group, self.max_group, self.success_threshold = min_group, max_group, success_threshold
        self.learn_every, self.count_tokens, self.refresh_s = learn_every, count_tokens, refresh_s
        self.case_render = case_render
        self.max_waiting = max_waiting
        self.save_to = Path(save_to) if save_to else None
        self.outcomes_path = Path(outcomes_path) if outcomes_path else None
        self.recorded = 0  # outcomes recorded since the policy was made
        self._lock = threading.RLock()
        self._outcomes: list[Outcome] = []  # recorded, not yet seen by learn()
        self._waiting: list[Outcome] = []  # seen, but their query group is still too small
        self._unwritten: list[Outcome] = []  # case writes that failed, retried on the next learn()
        self._shown: OrderedDict[str, Injection] = OrderedDict()
        self._queries: deque[str] = deque(maxlen=256)  # recent distinct queries: the task's vocabulary
        self._loop = LoopThread("memrl-policy")
        self._learn_lock: asyncio.Lock | None = None
        self._auto: Future[LearnResult] | None = None
        self._read_at = 0.0
        if self._store is not None:
            self._refresh(force=True)

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def load(
        cls, source: str | Path | Library | Memory, *, embedder: Any = None, **options: Any
    ) -> MemoryPolicy:
        """A policy from a run directory (its library, and the run's memory placement, diversity and tfgrpo
        settings, and its worked cases), a library export (`.json`), a chroma directory, a chroma server URL
        (`http://host:8000`) or `:memory:`. `options` are the constructor's; `embedder` is for a chroma memory
        (default: the offline MiniLM). See `memrl.policy_load`."""
        from memrl.policy_load import load_policy

        return load_policy(cls, source, embedder=embedder, **options)

    def export(self, path: str | Path) -> Path:
        """The current library as a deployable export (JSON with a schema version, plus markdown)."""
        with self._lock:
            return self.library.export(path)

    def save(self, folder: str | Path) -> None:
        """The library with all its versions, as a run directory keeps it (`Library.load` reads it), and the
        verified skills with their records in `skills/skills.json` (what `skills=folder` deploys)."""
        with self._lock:
            self.library.save(folder)
            if self.skill_library is not None:
                self.skill_library.save(Path(folder) / "skills" / "skills.json")

    def close(self) -> None:
        """Stop the policy's learning thread (it is a daemon: exiting without close() is fine too)."""
        self._loop.close()

    def __enter__(self) -> MemoryPolicy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        src = f"store={self._store!r}" if self._store is not None else f"library v{self.library.version}"
        return f"MemoryPolicy({src}, lessons={len(self.library)}, placement={self.placement!r})"

    # ------------------------------------------------------------------ augment
    def memory(self, query: str = "") -> Injection:
        """The memory for one query: lessons and cases that fit `token_budget`, rendered as in learning."""
        self._refresh()
        with self._lock:
            lessons = self.library.active()
        cases = self.cases.retrieve(query, self.max_cases) if self.cases and self.max_cases else []
        vectors = self._lesson_vectors() if lessons and self.diversity.injection != "all" else None
        shot = build_memory(query, lessons, cases, diversity=self.diversity, vectors=vectors,
                            budget=self.token_budget, max_lessons=self.max_lessons, count=self.count_tokens,
                            render=self.case_render)  # fmt: skip
        skills = self._skills_for(query)
        if skills and self.skill_library is not None:  # after the packed block, outside its budget
            text = "\n\n".join(b for b in (shot.text, self.skill_library.render(skills)) if b)
            shot = shot.model_copy(
                update={"text": text, "skills": [s.id for s in skills], "tokens": self.count_tokens(text)}
            )
        with self._lock:
            self._shown[question_key(query)] = shot
            self._shown.move_to_end(question_key(query))
            while len(self._shown) > 4096:
                self._shown.popitem(last=False)
        return shot

    def augment(self, messages: Sequence[Any], *, query: str | None = None) -> list[Any]:
        """A copy of `messages` (dicts or `Message`s) with memory placed as in learning. `query` defaults to
        the text of the last user message; it selects relevant lessons and cases."""
        block = self.memory(query if query is not None else query_text(messages)).text
        return inject(messages, block, self.placement)

    async def amemory(self, query: str = "") -> Injection:
        if self.cases is None and self._store is None:
            return self.memory(query)
        return await asyncio.to_thread(self.memory, query)

    async def aaugment(self, messages: Sequence[Any], *, query: str | None = None) -> list[Any]:
        block = (await self.amemory(query if query is not None else query_text(messages))).text
        return inject(messages, block, self.placement)

    def preload(self, query: str = "") -> Preload:
        """The code an app defines in its sandbox before it runs the model's program for `query`: the trusted
        skills that `memory(query)` shows (`code`), and their signatures (`names`). Empty without skills."""
        lib = self.skill_library
        return lib.preload(self._skills_for(query)) if lib is not None else Preload()

    async def apreload(self, query: str = "") -> Preload:
        if self.skill_library is None or not self.skill_library.skills:
            return Preload()
        return await asyncio.to_thread(self.preload, query)

    def _skills_for(self, query: str) -> list[Skill]:
        """The trusted skills for one query, chosen as the run's held-out evaluation chose them."""
        lib = self.skill_library
        if lib is None or not lib.skills:
            return []
        if lib.vectors is None:
            lib.vectors = self._lesson_vectors()
        return lib.select(Item(id="query", question=query), trusted_only=True)

    # ------------------------------------------------------------------ record
    def record(
        self,
        query: str,
        trajectory: str | Sequence[Any],
        reward: float,
        *,
        correct: bool | None = None,
        feedback: str = "",
        reference: str | None = None,
        program: str | None = None,
    ) -> Outcome:
        """Store one outcome. `trajectory` is the final answer or the messages of the attempt; `correct`
        defaults to `reward >= success_threshold`; `reference` (the right answer, when known) helps the learner.
        Give the same `query` text the memory was selected for (by default the task's user message): outcomes
        of one query form a learning group, and the outcome is linked to the lessons and cases it was shown.
        `program`: the code the app ran for this answer; a shown skill it called is counted for (correct) or
        against it, as in learning, so a skill that fails in use stops being deployed (`save` keeps the
        records)."""
        if not math.isfinite(reward):
            raise ValueError(f"reward must be a finite number, got {reward!r}")
        correct = reward >= self.success_threshold if correct is None else correct
        with self._lock:
            shown = self._shown.get(question_key(query))
            used: list[str] = []
            if program and shown and shown.skills and self.skill_library is not None:
                source = "deployed:" + hashlib.sha256(question_key(query).encode()).hexdigest()[:12]
                used = self.skill_library.count_use(shown.skills, program, correct, source)
        outcome = Outcome(
            query=query,
            trajectory=trajectory_lines(trajectory),
            reward=float(reward),
            correct=correct,
            feedback=feedback,
            reference=reference,
            lessons=shown.lessons if shown else [],
            cases=shown.cases if shown else [],
            skills=used,
        )
        with self._lock:
            self._outcomes.append(outcome)
            self.recorded += 1
            if query not in self._queries:
                self._queries.append(query)
            if self.outcomes_path is not None:
                self.outcomes_path.parent.mkdir(parents=True, exist_ok=True)
                with self.outcomes_path.open("a", encoding="utf-8") as f:
                    f.write(outcome.model_dump_json() + "\n")
            due = self.learn_every is not None and len(self._outcomes) >= self.learn_every
            if due and (self._auto is None or self._auto.done()):
                self._auto = self._loop.submit(self._learn())
                self._auto.add_done_callback(_log_failure)
        return outcome

    async def arecord(self, query: str, trajectory: str | Sequence[Any], reward: float, **kw: Any) -> Outcome:
        if self.outcomes_path is None:
            return self.record(query, trajectory, reward, **kw)
        return await asyncio.to_thread(self.record, query, trajectory, reward, **kw)

    @property
    def outcomes(self) -> list[Outcome]:
        """Outcomes recorded and not yet consumed by `learn()` (including those waiting for their group)."""
        with self._lock:
            return [*self._waiting, *self._outcomes]

    # ------------------------------------------------------------------ learn
    def learn(self) -> LearnResult:
        """One update over everything recorded so far; blocks until it is done."""
        return self._loop.submit(self._learn()).result()

    async def alearn(self) -> LearnResult:
        return await asyncio.wrap_future(self._loop.submit(self._learn()))

    async def _learn(self) -> LearnResult:
        if self._learn_lock is None:
            self._learn_lock = asyncio.Lock()
        async with self._learn_lock:
            return await self._update()

    async def _update(self) -> LearnResult:
        with self._lock:
            new, waiting = self._outcomes, self._waiting
            self._outcomes = []
            groups, self._waiting = group_outcomes([*waiting, *new], min_group=self.min_group,
                                                   max_group=self.max_group, max_waiting=self.max_waiting)  # fmt: skip
            snapshot, step = self.library.active(), self.library.version + 1
            terms = task_terms(self._queries)
        mixed = [g for g in groups if has_advantage([o.reward for o in g])]
        note = ""
        if mixed and self.learner is None and self.cases is not None:  # a case-memory-only policy
            note = f"no learner: {len(mixed)} groups written as cases only (MemoryPolicy(learner=...) learns lessons)"
        try:
            learner = resolve_learner(self.learner) if mixed and not note else None
            self.learner = learner or self.learner  # a model string is built once
            proposals = await propose(learner, mixed, snapshot, step, self.tfgrpo) if learner else []
            vectors = self._lesson_vectors() if proposals else None
            if self._store is not None:
                self._refresh(force=True)
            with self._lock:
                work = self.library.copy()  # curated off the lock; augment reads the old library meanwhile
            before = dict(work.lessons)
            for o in new:
                work.count_use(o.lessons, correct=o.correct)
            for g in groups:
                work.count_contrast([o.lessons for o in g], [o.reward for o in g])
            cur = await curate(list(proposals), work, tfgrpo=self.tfgrpo, diversity=self.diversity,
                               vectors=vectors, learner=learner, step=step, salt=f"policy:{step}",
                               task_terms=terms)  # fmt: skip
        except BaseException:
            with self._lock:  # nothing is lost: the outcomes go back for the next learn()
                self._outcomes[:0], self._waiting = new, waiting
            raise
        with self._lock:
            changed = [x for k, x in work.lessons.items() if before.get(k) != x]
            if changed:
                work.commit(note=f"MemoryPolicy.learn: {len(new)} outcomes, {len(mixed)} groups")
            self.library = work
            result = LearnResult(
                outcomes=len(new),
                groups=len(groups),
                compared=sum(map(len, groups)),
                learned_groups=len(mixed),
                waiting=len(self._waiting),
                ops=cur.ops,
                rejected=len(cur.rejected),
                merged=len(cur.merged),
                pruned=len(cur.pruned),
                library_version=work.version,
                lessons=len(work),
                note=note,
            )
        if self._store is not None and changed:
            self._store.save(work)  # new ids were claimed as added; counters go in as increments
        if self.save_to is not None and changed:
            self.export(self.save_to) if self.save_to.suffix == ".json" else self.save(self.save_to)
        result.cases_written = self._write_cases(new)
        log.info("MemoryPolicy.learn: %s", result.model_dump_json())
        return result

    def _write_cases(self, new: list[Outcome]) -> int:
        if self.cases is None:
            return 0
        with self._lock:
            batch, self._unwritten = [*self._unwritten, *new], []
        if not batch:
            return 0
        try:
            return self.cases.learn(batch)
        except Exception:
            log.exception("writing %d cases failed; they are retried on the next learn()", len(batch))
            with self._lock:
                self._unwritten[:0] = batch
            return 0

    def _lesson_vectors(self) -> LessonVectors | None:
        """Embeddings for lesson similarity, made on first use; None (exact text only) without an embedder."""
        if self._vectors is None:
            self._vectors = lesson_vectors(self._embedder, self.diversity)
        return self._vectors

    def _refresh(self, force: bool = False) -> None:
        """Store mode: re-read the lessons of the shared store (`memrl.library.store.ChromaLibraryStore`)."""
        if self._store is None or (not force and time.monotonic() - self._read_at < self.refresh_s):
            return
        lib = self._store.load()
        with self._lock:
            self.library, self._read_at = lib, time.monotonic()


def _log_failure(fut: Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("background learn() failed", exc_info=fut.exception())
