"""What a Memento episode runs against: a question answered with tools (judged by the task's verifier), or an
interactive TextWorld game (judged by its score). Both look the same to the agent: a task text, an
observation, the tools available now, whether it is over, and an outcome at the end."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from memrl.tasks.base import Verifier
from memrl.tools.base import Tool
from memrl.types import Item

__all__ = ["Outcome", "Episode", "QAEpisode", "TextWorldEpisode", "open_episode"]


class Outcome(BaseModel):
    reward: float
    success: bool
    detail: str = ""
    score: float | None = None
    max_score: float | None = None
    answer: str | None = None


class Episode(Protocol):
    id: str
    task: str
    #: True when the episode ends with a final answer (QA); False when acting is the answer (games).
    needs_answer: bool

    @property
    def done(self) -> bool: ...

    def observation(self) -> str: ...

    def progress(self) -> float:
        """Reward earned so far (a game's score); 0 for questions."""
        ...

    def tools(self) -> list[Tool]: ...

    async def outcome(self, answer: str | None) -> Outcome: ...

    def close(self) -> None: ...


class QAEpisode:
    """A question from the dataset; tools are the task's; the final answer goes to the verifier."""

    needs_answer = True
    done = False

    def __init__(self, item: Item, verifier: Verifier, tools: list[Tool]) -> None:
        self.item, self.verifier, self._tools = item, verifier, tools
        self.id, self.task = item.id, item.question

    def observation(self) -> str:
        return ""

    def progress(self) -> float:
        return 0.0

    def tools(self) -> list[Tool]:
        return self._tools

    async def outcome(self, answer: str | None) -> Outcome:
        v = await self.verifier.verify(self.item, answer or "")
        return Outcome(reward=v.reward, success=v.correct, detail=v.reason or ("correct" if v.correct else "wrong"),
                       answer=answer)  # fmt: skip

    def close(self) -> None:
        pass


class TextWorldEpisode:
    """One TextWorld game: the task is the objective and the opening scene; the tool is `act`."""

    needs_answer = False

    def __init__(self, item: Item, extra_tools: list[Tool] | None = None) -> None:
        from memrl.tasks.textworld_env import TextWorldGame

        self.game = TextWorldGame(item.meta["game"], max_moves=int(item.meta.get("max_moves", 50)))
        self.id = item.id
        self.task = self.game.start_text
        self._extra = extra_tools or []

    @property
    def done(self) -> bool:
        return self.game.done

    def observation(self) -> str:
        return f"{self.game.last_text} [score {self.game.score:g}/{self.game.max_score:g}]"

    def progress(self) -> float:
        return self.game.score

    def tools(self) -> list[Tool]:
        from memrl.tasks.textworld_env import ActTool

        return [ActTool(self.game), *self._extra]

    async def outcome(self, answer: str | None) -> Outcome:
        g = self.game
        reward = 1.0 if g.won else g.score / max(g.max_score, 1.0)
        state = "won" if g.won else ("lost" if g.lost else "unfinished")
        return Outcome(reward=reward, success=g.won, score=g.score, max_score=g.max_score,
                       detail=f"{state}, score {g.score:g}/{g.max_score:g} in {g.moves} moves")  # fmt: skip

    def close(self) -> None:
        self.game.close()


def open_episode(item: Item, verifier: Verifier, tools: list[Tool]) -> Episode:
    """A game when the item names one, otherwise a question."""
    if "game" in item.meta:
        return TextWorldEpisode(item)
    return QAEpisode(item, verifier, tools)
