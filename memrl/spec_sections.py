"""The common sections of a task file, one pydantic model each (`extra="forbid"`): the model, the data, the
verifier, the prompt, evaluation, budgets, cache and run folder. The algorithm sections (tfgrpo, gate,
diversity, entropy, memento) are in `memrl.spec_algos`; `memrl.spec.TaskSpec` puts them together."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(_Strict):
    """Which model to call and how. `name` is a litellm model string, `local`, `local:<named model>` (e.g.
    `local:qwen2.5-coder-1.5b`, see `memrl models`) or `local:/path/to.gguf`."""

    name: str = "local"
    api_base: str | None = None
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the API key (never the key)."
    )
    max_concurrency: int = Field(default=4, ge=1, le=1024)
    timeout_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=50)
    max_retry_wait_s: float = Field(default=60.0, ge=0)
    n_ctx: int = Field(default=2048, ge=256, description="Context size of an embedded local model.")
    prompt_cache_mb: int = Field(
        default=0,
        ge=0,
        description="An embedded local model's RAM prompt cache (llama-cpp-python `--cache`) in MB of saved "
        "state; 0 keeps only the last request's prefix. It pays where items' multi-turn requests interleave "
        "(0.82x the wall time on SmolLM2), not for evaluation (1.05x), and each saved state also copies its "
        "logits (~0.2 MB a token), which the size does not count (bench/bench_prompt_reuse.py).",
    )
    extra: dict[str, Any] = Field(default_factory=dict, description="Passed through to litellm as is.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        from memrl.llm.names import check_model_name

        return check_model_name(v)

    @field_validator("api_key_env")
    @classmethod
    def _check_key_env(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError(
                "api_key_env takes the NAME of an environment variable (e.g. OPENAI_API_KEY), not the key itself"
            )
        return v


def as_model_spec(value: Any) -> Any:
    """The one place a model string becomes a model spec: `"openai/gpt-4o-mini"` -> `{"name": ...}`."""
    return {"name": value} if isinstance(value, str) else value


#: A field that names a model: a model string or a full `ModelSpec` mapping, the same forms as `model:`.
ModelRef = Annotated[ModelSpec, BeforeValidator(as_model_spec)]


class DataSpec(_Strict):
    """Where the items come from and how they are split.

    `source` is a local file (.jsonl, .json, .csv; relative to the task file) or a packaged set:
    `gsm_symbolic`, `reasoning_gym:<name>`, `mmath:aime24|aime25|math500|cnmo`, `humaneval`.
    """

    source: str
    fields: dict[str, str] = Field(
        default_factory=dict, description="Map memrl's fields (id, question, answer) to the file's columns."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Arguments of a generated dataset.")
    size: int | None = Field(default=None, ge=1, description="Use at most this many items.")
    test_size: int | float = Field(
        default=0.5, description="Held-out items: a count, or a fraction in (0, 1)."
    )
    seed: int = 0

    @field_validator("test_size")
    @classmethod
    def _check_test_size(cls, v: int | float) -> int | float:
        if isinstance(v, float) and not 0 < v < 1:
            raise ValueError("a fractional test_size must lie strictly between 0 and 1")
        if isinstance(v, int) and v < 1:
            raise ValueError("test_size must be at least 1")
        return v


VerifierKind = Literal["math", "exact", "regex", "python", "code", "llm_judge", "reasoning_gym"]


class VerifierSpec(_Strict):
    """How an answer is judged."""

    kind: VerifierKind = "math"
    pattern: str | None = Field(
        default=None, description="regex: the answer must match (group 1 is compared)."
    )
    function: str | None = Field(default=None, description="python: `module:function` taking (item, answer).")
    case_sensitive: bool = False
    timeout_s: float = Field(default=10.0, gt=0)
    memory_mb: int = Field(default=512, ge=32)
    judge_model: ModelRef | None = Field(
        default=None, description="The judge for `kind: llm_judge`; the policy model by default."
    )

    @model_validator(mode="after")
    def _check_kind_fields(self) -> VerifierSpec:
        if self.kind == "regex" and not self.pattern:
            raise ValueError("verifier.kind 'regex' needs verifier.pattern")
        if self.kind == "regex" and self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as e:
                raise ValueError(f"verifier.pattern is not a valid regex: {e}") from None
        if self.kind == "python" and (not self.function or ":" not in self.function):
            raise ValueError("verifier.kind 'python' needs verifier.function as 'module:function'")
        return self


class PromptSpec(_Strict):
    """The prompt the policy sees. `template` is Jinja over the item (`question`, `meta`)."""

    system: str = "You are a careful problem solver."
    template: str = "{{ question }}"
    memory_placement: Literal["system", "user"] = Field(
        default="system", description="Where learned memory goes, the same while learning and when deployed."
    )


class EvalSpec(_Strict):
    k: int = Field(default=1, ge=1, le=1024, description="Samples per held-out item (Mean@k, Pass@k).")
    temperature: float = Field(default=0.3, ge=0, le=2)
    max_tokens: int = Field(default=256, ge=1)
    stop: list[str] | None = None
    limit: int | None = Field(default=None, ge=1, description="Evaluate at most this many test items.")


class BudgetSpec(_Strict):
    max_tokens: int | None = Field(default=None, ge=1)
    max_usd: float | None = Field(default=None, gt=0)


class CacheSpec(_Strict):
    enabled: bool = True
    path: str | None = Field(
        default=None, description="sqlite file; the run directory's cache.sqlite by default."
    )


class RunSpec(_Strict):
    dir: str = "runs"
    name: str | None = None
    seed: int = 0
