"""What `MemoryPolicy` needs to learn, as stateless steps: groups recorded outcomes by query, turns a group
into the item and rollouts the Training-Free GRPO learner reads, asks the learner for proposals, and makes
the learner model, the lesson embeddings and the deployed skills from what the caller gave.

`memrl.policy.MemoryPolicy` holds the state (outcomes, library, locks) and calls these.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from memrl.algos.tfgrpo.advantage import learn_from_group
from memrl.errors import ConfigError
from memrl.inject import LessonVectors
from memrl.library import Proposal
from memrl.llm.base import LLM
from memrl.memory.base import Embedder
from memrl.memory.records import LessonRecord
from memrl.policy_cases import Outcome
from memrl.skills import SkillLibrary
from memrl.spec import DiversitySpec, ModelSpec, TFGRPOSpec, as_model_spec
from memrl.types import Completion, Item, Message, Rollout, Verdict, question_key

__all__ = ["as_group", "deployed_skills", "group_outcomes", "lesson_vectors", "propose", "resolve_learner"]

log = logging.getLogger(__name__)


def group_outcomes(
    outcomes: Sequence[Outcome], *, min_group: int, max_group: int, max_waiting: int
) -> tuple[list[list[Outcome]], list[Outcome]]:
    """The learning groups (outcomes of one query, at most `max_group` each) and the outcomes that wait for
    their group to fill (a remainder under `min_group`; at most `max_waiting`, the newest kept)."""
    by_query: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_query.setdefault(question_key(o.query), []).append(o)
    chunks = [g[i : i + max_group] for g in by_query.values() for i in range(0, len(g), max_group)]
    groups = [c for c in chunks if len(c) >= min_group]
    waiting = [o for c in chunks if len(c) < min_group for o in c][-max_waiting:]
    return groups, waiting


def resolve_learner(learner: LLM | ModelSpec | str | None) -> LLM:
    """The learner model, built from a model string or `ModelSpec` where one was given."""
    if learner is None:
        raise ConfigError(
            "MemoryPolicy.learn() needs a learner model: MemoryPolicy(..., learner='local') "
            "or any model string, ModelSpec or LLM"
        )
    if isinstance(learner, (str, ModelSpec)):
        from memrl.llm.factory import build_llm

        return build_llm(ModelSpec.model_validate(as_model_spec(learner)))
    return learner


async def propose(
    learner: LLM, groups: list[list[Outcome]], snapshot: list[LessonRecord], step: int, tfgrpo: TFGRPOSpec
) -> list[Proposal]:
    """The learner's proposals for each group with an advantage, as `memrl run` asks for them."""
    jobs = []
    for i, group in enumerate(groups):
        item, rollouts = as_group(group)
        salt = f"policy:{step}:{i}:{item.id}"
        jobs.append(learn_from_group(learner, item, i, rollouts, snapshot, tfgrpo, step=step, salt=salt))
    return await asyncio.gather(*jobs)


def as_group(group: list[Outcome]) -> tuple[Item, list[Rollout]]:
    """A group of outcomes of one query as the item and rollouts a TF-GRPO step would have made."""
    first = group[0]
    item_id = "q-" + hashlib.sha1(question_key(first.query).encode()).hexdigest()[:10]
    reference = next((o.reference for o in group if o.reference is not None), None)
    item = Item(id=item_id, question=first.query, answer=reference)
    rollouts = [
        Rollout(
            item_id=item_id,
            sample=j,
            messages=[Message.user(first.query)],
            completion=Completion(text=_clip("\n".join(o.trajectory))),
            verdict=Verdict(reward=o.reward, correct=o.correct, reason=o.feedback),
        )
        for j, o in enumerate(group)
    ]
    return item, rollouts


def lesson_vectors(embedder: Embedder | str | None, diversity: DiversitySpec) -> LessonVectors | None:
    """Embeddings for lesson similarity (`embedder`, a name or None for the `diversity` default); None, with a
    warning, where no embedder can be made: then only equal lesson texts are folded."""
    from memrl.memory.embed import make_embedder

    try:
        emb = (
            make_embedder(embedder or diversity.embedder)
            if embedder is None or isinstance(embedder, str)
            else embedder
        )
    except ConfigError as e:
        log.warning("no embedder for lesson similarity (%s): only equal lesson texts are folded", e)
        return None
    return LessonVectors(emb)


def deployed_skills(skills: SkillLibrary | str | Path | None, tfgrpo: TFGRPOSpec) -> SkillLibrary | None:
    """The skills a policy deploys: a `SkillLibrary` as given, or one read from a `skills.json` or a run."""
    if skills is None or isinstance(skills, SkillLibrary):
        return skills
    return SkillLibrary.deployed(Path(skills).expanduser(), tfgrpo.skills)


def _clip(text: str, head: int = 1000, tail: int = 3000) -> str:
    return text if len(text) <= head + tail else f"{text[:head]}\n…\n{text[-tail:]}"
