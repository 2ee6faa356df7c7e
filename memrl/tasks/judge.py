"""An LLM judge: a model decides whether an answer is right, given the question and the reference.

Its calls go through the run's cache, budgets and ledger under the phase `judge`; a judge answer that is
not valid JSON after repair and retry scores 0 with the reason logged, never a crash.
"""

from __future__ import annotations

from pydantic import BaseModel

from memrl.llm.base import LLM
from memrl.prompts import load_prompt
from memrl.structured import ask_structured
from memrl.types import Item, Verdict

__all__ = ["LLMJudge"]


class _Judgement(BaseModel):
    correct: bool
    reason: str = ""


_SCHEMA = {
    "type": "object",
    "properties": {"reason": {"type": "string", "maxLength": 300}, "correct": {"type": "boolean"}},
    "required": ["reason", "correct"],
}


class LLMJudge:
    name = "llm_judge"

    def __init__(self, llm: LLM) -> None:
        self.llm = llm

    async def verify(self, item: Item, answer: str) -> Verdict:
        msgs = load_prompt("judge").messages(question=item.question, reference=item.answer, answer=answer)
        salt = f"judge:{item.id}"
        out = await ask_structured(
            self.llm,
            msgs,
            _Judgement,
            schema=_SCHEMA,
            phase="judge",
            salt=salt,
            temperature=0.0,
            max_tokens=200,
        )
        if out is None:
            return Verdict(reward=0.0, correct=False, reason="the judge's answer could not be read")
        return Verdict(reward=1.0 if out.correct else 0.0, correct=out.correct, reason=out.reason[:300])
