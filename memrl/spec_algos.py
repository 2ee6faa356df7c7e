"""The algorithm sections of a task file, one pydantic model each (`extra="forbid"`): Training-Free GRPO
(`tfgrpo`, with its no-harm `gate` and worked-case retrieval), `diversity`, `entropy` and `memento` (with its
MCP servers). `memrl.spec.TaskSpec` puts them together with the common sections of `memrl.spec_sections`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from memrl.spec_act import SkillSpec
from memrl.spec_sections import ModelRef, _Strict

__all__ = [
    "CaseRetrievalSpec",
    "GateSpec",
    "TFGRPOSpec",
    "DiversitySpec",
    "MCPServerSpec",
    "MementoSpec",
    "EntropySpec",
]


class CaseRetrievalSpec(_Strict):
    """How the Memento planner reads case memory. `mode`: `off` (no cases), `similarity` (cosine top-k),
    `q` (rank by `w_sim·sim + w_q·Q(task, case)`, Q learned online, with exploration). See docs/memento.md."""

    mode: Literal["off", "similarity", "q"] = "q"
    k: int = Field(default=4, ge=1, le=32, description="Cases put into the planner prompt.")
    pool: int = Field(default=16, ge=1, description="Nearest cases scored by Q (the candidate pool).")
    min_similarity: float | None = Field(default=None, ge=-1, le=1)
    positive_reward: float = Field(
        default=0.5, ge=0, le=1, description="Cases at or above this reward are examples to follow."
    )
    w_sim: float = Field(default=1.0, ge=0)
    w_q: float = Field(default=1.0, ge=0)
    exploration: Literal["epsilon", "ucb", "none"] = "epsilon"
    epsilon: float = Field(default=0.1, ge=0, le=1, description="Chance per slot of a random pool case.")
    ucb_c: float = Field(default=0.5, ge=0, description="UCB bonus c·sqrt(ln(1+N)/(1+n_c)).")
    alpha: float = Field(default=0.3, gt=0, le=1, description="Step size of the per-case utility.")
    alpha_shared: float = Field(default=0.05, ge=0, le=1, description="Step size of the shared weights.")
    q_init: float = Field(default=0.0, description="Utility of a case never used.")

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, v: Any) -> Any:
        return "off" if v is False else v  # YAML reads a bare `off` as false


class GateSpec(_Strict):
    """The no-harm gate: after each learning step, the library as the step left it is scored on a validation
    split carved from the *training* data and compared, item by item with the same seeds, with the library as
    it was before the step; a step that scores lower is rolled back (its edits are logged and shown by
    `memrl library show`). Held-out data is never used."""

    enabled: bool = False
    validation: int | float = Field(
        default=0.25, description="Training items kept aside for the gate: a count, or a share in (0, 1)."
    )
    k: int = Field(default=1, ge=1, le=64, description="Samples per validation item.")
    temperature: float = Field(default=0.0, ge=0, le=2, description="Validation sampling temperature.")

    @field_validator("validation")
    @classmethod
    def _check_validation(cls, v: int | float) -> int | float:
        if isinstance(v, float) and not 0 < v < 1:
            raise ValueError("a fractional gate.validation must lie strictly between 0 and 1")
        if isinstance(v, int) and v < 1:
            raise ValueError("gate.validation must be at least 1 item")
        return v


class TFGRPOSpec(_Strict):
    """Training-Free GRPO: epochs × steps of `batch_size` queries with `group_size` rollouts each."""

    epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=4, ge=1)
    group_size: int = Field(default=4, ge=2)
    steps_per_epoch: int | None = Field(
        default=None, ge=1, description="Default: one pass over the training split."
    )
    temperature: float = Field(default=0.7, ge=0, le=2, description="Rollout temperature.")
    max_tokens: int | None = Field(
        default=None, ge=1, description="Rollout answer cap; eval.max_tokens by default."
    )
    learner: ModelRef | None = Field(
        default=None, description="The model that writes lessons; the policy by default."
    )
    given_ground_truth: bool = Field(default=True, description="Show the learner the reference answer.")
    lessons_per_group: int = Field(default=2, ge=1, le=10)
    ops_per_query: int = Field(default=3, ge=1, le=10)
    word_cap: int = Field(default=32, ge=4, le=200)
    summary_words: int = Field(default=60, ge=10)
    learner_temperature: float = Field(default=0.3, ge=0, le=2)
    learner_max_tokens: int = Field(default=384, ge=32)
    reconcile_similarity: float = Field(
        default=0.75, gt=0, le=1,
        description="Cosine (run's embedder) at which a new lesson and a kept one go to the learner's one "
        "reconcile call of the step, which decides 'same' (fold) or 'different' (keep both).",
    )  # fmt: skip
    max_lessons: int = Field(default=40, ge=1, description="Library size cap; ADDs beyond it are rejected.")
    experiences: Literal["lessons", "cases", "both", "none"] = Field(
        default="lessons",
        description="What the policy learns and is shown: lessons (the semantic advantage), worked cases (its "
        "own verified solutions to training items, retrieved by similarity or learned utility), both, or "
        "none of them (with `skills` on: verified skills alone).",
    )
    cases: CaseRetrievalSpec = Field(
        default_factory=lambda: CaseRetrievalSpec(mode="similarity", k=2, exploration="none"),
        description="How worked cases are retrieved (with `experiences: cases|both`); `mode: q` learns each "
        "case's utility from the rewards of the rollouts it was shown to.",
    )
    memory_tokens: int | None = Field(
        default=None, ge=16,
        description="One token budget for the memory block (lessons first, then cases). Default: no cap for "
        "lessons alone, 1200 tokens once cases are on.",
    )  # fmt: skip
    failure_lessons: bool = Field(
        default=False,
        description="Let the learner also write 'When <situation>, avoid <mistake>' lessons from what the "
        "lower-reward attempts of a group got wrong (memory from failures; off by default: not yet measured).",
    )
    skills: SkillSpec = Field(
        default_factory=SkillSpec,
        description="Verified skills: functions from the policy's own verified programs, shown and preloaded "
        "in the sandbox once they solved other training items (needs `act:`).",
    )
    gate: GateSpec = Field(
        default_factory=GateSpec,
        description="No-harm gate: roll back a step whose library scores lower on a validation split of the "
        "training data (off by default; on in the quickstart and the efficacy suite).",
    )
    case_chars: int = Field(
        default=2000,
        ge=80,
        description="Longest solution kept as a worked case; a longer one is not stored (never clipped: small "
        "models copy a clipped example, cut and all).",
    )
    lesson_pattern: str | None = Field(
        default=r"^[A-Z][a-z]+ [^\n]{16,300}$",
        description="Regex every lesson must match, enforced by schema-constrained decoding where the provider "
        "supports it (llama.cpp). The default only asks for a sentence (a capitalised word, then at least 16 "
        "more characters on one line), so a lesson may carry a formula, a unit or an answer format; a lesson "
        "that repeats a specific number or name of its own group's question is rejected instead. null: off.",
    )


class DiversitySpec(_Strict):
    """Controls that keep the experience library diverse; each is a switch so its effect can be measured.
    Metrics are always logged; `enabled: false` turns every control off at once (for ablations)."""

    enabled: bool = True
    embedder: str | None = Field(
        default=None, description="Embedder for lessons (memrl.memory names); offline MiniLM by default."
    )
    dedup_threshold: float | None = Field(
        default=0.98, gt=0, le=1,
        description="Cosine at which active lessons merge (lineage kept); copies by default, since near but "
        "unequal lessons are judged by the learner when proposed (tfgrpo.reconcile_similarity); null: off.",
    )  # fmt: skip
    redundancy_threshold: float = Field(
        default=0.9, gt=0, le=1, description="Cosine at which a pair counts as redundant."
    )
    injection: Literal["all", "mmr", "dpp"] = Field(
        default="mmr",
        description="How lessons are picked and ordered for a prompt (relevance and diversity).",
    )
    max_memory_tokens: int | None = Field(
        default=800, ge=1, description="Token budget for injected lessons (estimated tokens); null: no cap."
    )
    mmr_lambda: float = Field(default=0.5, ge=0, le=1)
    explore_subsets: bool = Field(
        default=True,
        description="Rollout 0 of a group sees every selected lesson, the others each lesson with chance "
        "subset_fraction: the group contrasts lessons, which is the evidence pruning uses.",
    )
    subset_fraction: float = Field(
        default=0.6, gt=0, le=1, description="Share of lessons each exploring rollout sees."
    )
    max_edits_per_step: int | None = Field(default=8, ge=1, description="Cap on library edits per step.")
    max_rewrites: int | None = Field(
        default=3, ge=1, description="Cap on UPDATEs of one lesson over the run."
    )
    protect_rare_success: bool = Field(
        default=True,
        description="Lessons learned from a rare success (one correct rollout in a group of at least 4) are "
        "never deleted by the learner, merged into a neighbour or pruned.",
    )
    prune_harmful_margin: int | None = Field(
        default=3, ge=0,
        description="Retire a lesson when, in groups where some rollouts saw it and others did not, those that "
        "saw it did worse this many times more than better (and the sign test agrees); null: off.",
    )  # fmt: skip
    prune_harmful_p: float = Field(
        default=0.05, gt=0, le=1, description="Sign-test level for pruning a harmful lesson."
    )
    prune_unused_steps: int | None = Field(
        default=None, ge=1, description="Retire lessons never injected for this many steps."
    )
    alarm_mixed_fraction: float | None = Field(
        default=0.1, ge=0, le=1, description="Collapse alarm: mixed-group share below this."
    )
    alarm_answer_entropy: float | None = Field(
        default=0.05, ge=0, description="Collapse alarm: mean answer entropy (nats) below this."
    )
    alarm_shrink: float | None = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Collapse alarm: library shrinks by more than this share in a step.",
    )
    alarm_temperature_step: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Response: raise rollout temperature by this (max 1.2) and explore subsets.",
    )


class MCPServerSpec(_Strict):
    """An MCP server started over stdio; its tools join the executor's (needs the `mcp` extra)."""

    command: str
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    prefix: str = Field(default="", description="Prepended to the server's tool names.")
    timeout_s: float = Field(default=30.0, gt=0)


class MementoSpec(_Strict):
    """Memento: planner (DAG of subtasks) → executor (tools) → answer, with case, subtask and tool memory."""

    cases: CaseRetrievalSpec = Field(default_factory=CaseRetrievalSpec)
    subtask_memory: bool = Field(default=True, description="Show similar past subtasks to the executor.")
    tool_memory: bool = Field(default=True, description="Show which tools worked on similar subtasks.")
    hint_k: int = Field(default=3, ge=0, le=10)
    hint_min_similarity: float = Field(default=0.5, ge=-1, le=1)
    write_memory: bool = Field(
        default=True, description="Write cases, subtasks and tool calls after episodes."
    )
    memory: str | None = Field(
        default=None, description="Memory location (folder or chroma URL); the run's memory/ by default."
    )
    namespace: str = "memento"
    embedder: str | None = Field(default=None, description="Embedder name; the offline MiniLM by default.")
    tools: list[str] = Field(default_factory=lambda: ["calculator", "python"])
    mcp_servers: list[MCPServerSpec] = Field(default_factory=list)
    max_subtasks: int = Field(default=4, ge=1, le=12)
    plan_schema: Literal["ordered", "free"] = Field(
        default="ordered",
        description="ordered: subtasks s1..sN, each depending only on earlier ones (a DAG wherever the provider "
        "enforces schemas); free: any ids and dependencies. Plans are validated as DAGs either way.",
    )
    min_subtask_steps: int = Field(default=0, ge=0, description="Tool calls before a subtask may finish.")
    max_replans: int = Field(default=2, ge=0, le=10, description="Re-plans after an invalid plan.")
    max_cycles: int = Field(default=2, ge=1, le=10, description="Plan → execute rounds per episode.")
    max_subtask_steps: int = Field(default=4, ge=1)
    max_steps: int = Field(default=16, ge=1, description="Tool calls per episode.")
    max_tokens: int = Field(default=20_000, ge=1, description="Model tokens per episode.")
    max_seconds: float = Field(default=600.0, gt=0, description="Wall-clock seconds per episode.")
    temperature: float = Field(default=0.7, ge=0, le=2)
    planner_max_tokens: int = Field(default=256, ge=16)
    action_max_tokens: int = Field(default=128, ge=8)
    answer_max_tokens: int = Field(default=64, ge=1)
    train_episodes: int | None = Field(default=None, ge=0, description="Default: one per training item.")
    evaluate: bool = Field(default=True, description="Play the test split after training.")
    learn_during_eval: bool = Field(
        default=False, description="Keep writing memory and updating Q on the test split."
    )
    skills: str | None = Field(
        default=None,
        description="Verified skills to deploy: a skills.json or a Training-Free GRPO run directory "
        "(relative to the task file). Its trusted skills most similar to each task are defined in the "
        "python tool's sandbox before every program and named in the tool's description.",
    )
    skills_k: int = Field(default=1, ge=1, le=5, description="Skills defined and named per task.")

    @model_validator(mode="after")
    def _skills_need_python(self) -> MementoSpec:
        if self.skills and "python" not in self.tools:
            raise ValueError("memento.skills needs the python tool: add `python` to memento.tools")
        return self


class EntropySpec(_Strict):
    """Entropy measured with a local open-weight model during Training-Free GRPO (present = on)."""

    model: str = Field(default="local", description="'local' (bundled GGUF) or 'local:/path/model.gguf'.")
    n_ctx: int = Field(default=2048, ge=256)
    aggregation: Literal["seq-mean-token-mean", "token-mean"] = "seq-mean-token-mean"
    lesson_kl: bool = Field(default=True, description="Record each new or changed lesson's KL sharpening.")
    kl_prompts: int = Field(default=2, ge=1, le=32, description="Prompts sampled per lesson for its KL.")
    api_top_logprobs: int | None = Field(
        default=None, ge=1, le=20, description="Ask the policy for top-k logprobs and log entropy bounds."
    )
