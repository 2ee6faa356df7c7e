"""The task file's sections for acting with a tool (`act:`) and for verified skills (`tfgrpo.skills`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ActSpec", "SkillSpec"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActSpec(_Strict):
    """Answers may run Python in the sandbox: the model writes a ```python block, memrl runs it and shows what
    it printed (or the error) on the next turn. Used by rollouts and evaluation alike (`memrl.act`)."""

    tools: list[Literal["python"]] = ["python"]  # pydantic copies the default for each spec
    max_turns: int = Field(default=3, ge=1, le=20, description="Model calls per answer, at most.")
    max_tokens: int = Field(
        default=1536, ge=16, description="Generated tokens per answer over all its turns, at most."
    )
    finish: Literal["output", "model"] = Field(
        default="output",
        description="`output`: a program that runs and prints ends the answer, and what it printed is the "
        "final answer (one call when the first program works); `model`: the model reads the output and "
        "writes the final answer.",
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="Wall-clock limit per program.")
    memory_mb: int = Field(default=512, ge=64, description="Memory limit per program.")


class SkillSpec(_Strict):
    """Verified skills (`memrl.skills`): functions cut from the policy's own programs that produced a
    verified answer on a training item; trusted after they solve other training items; shown and preloaded
    in the sandbox. Needs an `act:` section."""

    enabled: bool = False
    k: int = Field(default=1, ge=1, le=5, description="Skills shown and preloaded per question.")
    verify_items: int = Field(
        default=1, ge=1, description="Other training items a candidate must solve before it is trusted."
    )
    retire_failures: int = Field(
        default=3,
        ge=1,
        description="Failures after which a skill with under one success in three is retired.",
    )
    show_chars: int = Field(
        default=1500,
        ge=100,
        description="A skill's code is shown in full up to this length, else its signature.",
    )
