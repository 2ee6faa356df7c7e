"""GEPA (reflective prompt evolution, the `gepa` package on PyPI) as a peer: it evolves the system prompt.

GEPA keeps a pool of candidate system prompts. Each iteration it picks a parent from the Pareto front over
a validation set, answers a minibatch of 3 training items with it, shows the task model's answers, the
reference answers and right/wrong feedback to a reflection model (here the task model itself, through
`ctx.chat`), evaluates the proposed prompt on the same minibatch, and, when it scores strictly better,
scores it on the whole validation set and adds it to the pool. The best candidate by mean validation score
is returned.

Messages are built by memrl's own `policy_messages`, so GEPA optimises exactly the prompt the bench later
scores: the system text is Jinja like the user template, and a proposal that does not render is dropped.

Split. `ctx.train` is shuffled by `ctx.seed`; the first `n_val` items are GEPA's valset, the rest its
trainset (reflection minibatches). Every accepted candidate costs `n_val` rollouts, so the valset is sized
from the budget rather than half the data: `n_val = max(min(8, budget // 3), budget // 8)`, capped at half
of train. At 200 rollouts that is 25 validation items: the seed's evaluation takes 1/8 of the budget and
several accepted candidates still leave room for dozens of minibatch steps.

Budget. GEPA's metric calls are task-model rollouts, so `max_metric_calls = ctx.budget_rollouts`. GEPA only
checks that limit before an iteration and would overshoot it by up to 6 + n_val, so the peer adds its own
stopper: stop once fewer than `2 * 3 + n_val` rollouts remain, since past that no new candidate can be
validated and further iterations could not change the result. The adapter also refuses any batch that
would cross the budget, so `rollouts <= budget_rollouts` always. `calls` adds the reflection calls;
tokens are summed from what `ctx.chat` returns. The counters live in GEPA's saved state (adapter state),
so a run resumed from `run_dir` reports the same totals as one that was never killed (work redone after the
last save, and GEPA's repeat of the seed evaluation on resume, come from the bench's response cache).

Failures. A weak model's reflection may be empty, unchanged, unfenced or unrenderable: GEPA's own extractor
takes the text inside ``` (or the whole reply, as GEPA does), and a proposal that is empty, unchanged or
does not render is skipped without spending rollouts. A failed rollout scores 0. If GEPA itself fails, the
peer returns the seed prompt and says why in `detail`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

from bench.peers.base import PeerContext, PeerResult
from memrl.inject import policy_messages
from memrl.spec import PromptSpec
from memrl.types import Item

__all__ = ["learn", "split"]

log = logging.getLogger(__name__)

COMPONENT = "system_prompt"
MINIBATCH = 3  # GEPA's default reflection minibatch
REFLECT_TEMPERATURE = 0.7
REFLECT_MAX_TOKENS = 768
SHOWN_CHARS = 1200  # an answer longer than this is shown to reflection as its head and tail


class BudgetSpent(RuntimeError):
    """A batch would take the peer past ctx.budget_rollouts."""


@dataclass
class Ledger:
    """What the peer spent; saved in GEPA's state so a resumed run keeps counting."""

    rollouts: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rollout_errors: int = 0
    reflections: int = 0
    reflections_unfenced: int = 0  # no ``` block: GEPA takes the whole reply
    reflections_skipped: int = 0  # empty, unchanged or unrenderable proposal
    reflection_errors: int = 0
    exhausted: bool = False
    seconds: float = 0.0  # learning time before the last resume

    def chat(
        self, ctx: PeerContext, messages: list[dict[str, str]], temperature: float, max_tokens: int
    ) -> str:
        self.calls += 1
        text, p, c = ctx.chat(messages, temperature, max_tokens)
        self.prompt_tokens += int(p or 0)
        self.completion_tokens += int(c or 0)
        return text or ""


def split(train: list[Item], budget: int, seed: int) -> tuple[list[Item], list[Item]]:
    """(GEPA trainset, GEPA valset), disjoint, deterministic in `seed`."""
    items = list(train)
    random.Random(seed).shuffle(items)
    if len(items) < 2:
        return items, items
    n_val = min(len(items) // 2, max(min(8, budget // 3), budget // 8))
    n_val = max(n_val, 1)
    return items[n_val:], items[:n_val]


def _messages(system: str, template: str, item: Item) -> list[dict[str, str]]:
    return [
        {"role": m.role, "content": m.content}
        for m in policy_messages(PromptSpec(system=system, template=template), item)
    ]


def _shown(text: str) -> str:
    if len(text) <= SHOWN_CHARS:
        return text
    head = SHOWN_CHARS // 3
    return f"{text[:head]}\n[… {len(text) - SHOWN_CHARS} characters cut …]\n{text[-(SHOWN_CHARS - head) :]}"


class Adapter:
    """GEPAAdapter over one-turn answering: system prompt = candidate, score = the task's verifier."""

    propose_new_texts = None  # GEPA then uses the custom proposer passed to optimize()

    def __init__(self, ctx: PeerContext, budget: int, ledger: Ledger) -> None:
        self.ctx, self.budget, self.ledger = ctx, budget, ledger
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return self.ledger.seconds + time.monotonic() - self.t0

    def evaluate(self, batch: list[Item], candidate: dict[str, str], capture_traces: bool = False) -> Any:
        from gepa import EvaluationBatch

        if self.ledger.rollouts + len(batch) > self.budget:
            self.ledger.exhausted = True
            raise BudgetSpent(f"{len(batch)} more rollouts would pass the budget of {self.budget}")
        outputs, scores, traces = [], [], []
        for item in batch:
            self.ledger.rollouts += 1
            text, error = "", None
            try:
                msgs = _messages(candidate[COMPONENT], self.ctx.template, item)
                text = self.ledger.chat(self.ctx, msgs, self.ctx.temperature, self.ctx.max_tokens)
                score = float(self.ctx.score(item, text))
            except Exception as e:  # GEPA's contract: a failed example scores 0, it does not raise
                self.ledger.rollout_errors += 1
                error, score = f"{type(e).__name__}: {e}", 0.0
            outputs.append(text)
            scores.append(score)
            traces.append({"item": item, "answer": text, "score": score, "error": error})
        return EvaluationBatch(
            outputs=outputs, scores=scores, trajectories=traces if capture_traces else None
        )

    def make_reflective_dataset(
        self, candidate: dict[str, str], eval_batch: Any, components_to_update: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        records = []
        for t in eval_batch.trajectories or []:
            item: Item = t["item"]
            ref = f"The reference answer is {item.answer}." if item.answer is not None else ""
            if t["error"]:
                verdict = f"The answer could not be produced or checked ({t['error']})."
            elif t["score"] >= 1.0:
                verdict = "The answer is correct."
            elif t["score"] > 0.0:
                verdict = f"The answer is partly correct (reward {t['score']:.2f})."
            else:
                verdict = "The answer is wrong."
            records.append(
                {
                    "Inputs": {"question": item.question},
                    "Generated Outputs": _shown(t["answer"]) or "(empty)",
                    "Feedback": f"{verdict} {ref}".strip(),
                }
            )
        return {name: records for name in components_to_update}

    def get_adapter_state(self) -> dict[str, Any]:
        return asdict(self.ledger) | {"seconds": self.elapsed()}

    def set_adapter_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            if hasattr(self.ledger, key):
                setattr(self.ledger, key, value)
        self.t0 = time.monotonic()


class Proposer:
    """GEPA's default reflection (its prompt and its ``` extractor), called through ctx.chat, made safe."""

    def __init__(self, ctx: PeerContext, ledger: Ledger, probe: Item) -> None:
        self.ctx, self.ledger, self.probe = ctx, ledger, probe

    def __call__(
        self, candidate: dict[str, str], reflective_dataset: Any, components_to_update: list[str]
    ) -> dict[str, str]:
        from gepa.strategies.instruction_proposal import InstructionProposalSignature as Sig

        out: dict[str, str] = {}
        for name in components_to_update:
            records = reflective_dataset.get(name)
            if not records:
                continue
            prompt = Sig.prompt_renderer(
                {
                    "current_instruction_doc": candidate[name],
                    "dataset_with_feedback": records,
                    "prompt_template": None,
                }
            )
            try:
                reply = self.ledger.chat(
                    self.ctx,
                    [{"role": "user", "content": str(prompt)}],
                    REFLECT_TEMPERATURE,
                    REFLECT_MAX_TOKENS,
                )
            except Exception as e:
                self.ledger.reflection_errors += 1
                log.warning("gepa peer: reflection call failed: %s: %s", type(e).__name__, e)
                continue
            self.ledger.reflections += 1
            if "```" not in reply:
                self.ledger.reflections_unfenced += 1
            new = Sig.output_extractor(reply.strip())["new_instruction"].strip()
            if not new or new == candidate[name].strip() or not self._renders(new):
                self.ledger.reflections_skipped += 1
                log.debug("gepa peer: skipped reflection reply %r", reply[:500])
                continue
            out[name] = new
        return out

    def _renders(self, system: str) -> bool:
        try:
            _messages(system, self.ctx.template, self.probe)
        except Exception:
            return False
        return True


class _Log:
    """GEPA's LoggerProtocol onto `logging` (GEPA's own logger would tee stdout into the run dir)."""

    def log(self, message: str) -> None:
        log.debug("gepa: %s", message)


def _fingerprint(ctx: PeerContext, train: list[Item], val: list[Item]) -> str:
    key = {
        "gepa": version("gepa"),
        "seed": ctx.seed,
        "budget": ctx.budget_rollouts,
        "system": ctx.system,
        "template": ctx.template,
        "model": ctx.model_alias,
        "sampling": [ctx.temperature, ctx.max_tokens],
        "train": [i.id for i in train],
        "val": [i.id for i in val],
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def learn(ctx: PeerContext) -> PeerResult:
    try:
        import gepa
    except ImportError:
        raise ImportError("the GEPA peer needs the `bench` extra: pip install 'memrl[bench]'") from None

    budget = ctx.budget_rollouts
    trainset, valset = split(ctx.train, budget, ctx.seed)
    n_val = len(valset)
    run_dir = Path(ctx.workdir) / f"gepa-{_fingerprint(ctx, trainset, valset)}"
    ledger = Ledger()
    adapter = Adapter(ctx, budget, ledger)
    reserve = 2 * MINIBATCH + n_val  # what one iteration that finds a better prompt costs
    detail: dict[str, Any] = {
        "gepa_version": version("gepa"),
        "run_dir": str(run_dir),
        "n_train": len(trainset),
        "n_val": n_val,
        "minibatch": MINIBATCH,
    }

    best = ctx.system
    if not valset or budget < n_val + reserve:
        detail["error"] = (
            f"budget {budget} is below one seed evaluation plus one iteration ({n_val + reserve})"
        )
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            result: Any = gepa.optimize(
                seed_candidate={COMPONENT: ctx.system},
                trainset=trainset,
                valset=valset,
                adapter=cast(Any, adapter),  # a structural GEPAAdapter
                custom_candidate_proposer=Proposer(ctx, ledger, trainset[0]),
                reflection_minibatch_size=MINIBATCH,
                max_metric_calls=budget,
                stop_callbacks=[lambda _state: ledger.exhausted or budget - ledger.rollouts < reserve],
                logger=_Log(),
                run_dir=str(run_dir),
                track_best_outputs=False,
                seed=ctx.seed,
                raise_on_exception=False,
            )
            best = result.best_candidate[COMPONENT]
            scores = [round(s, 4) for s in result.val_aggregate_scores]
            detail |= {
                "candidates": result.num_candidates,
                "best_idx": result.best_idx,
                "best_val_score": scores[result.best_idx],
                "seed_val_score": scores[0],
                "val_scores": scores,
                "parents": result.parents,
                "gepa_metric_calls": result.total_metric_calls,
                "full_val_evals": result.num_full_val_evals,
            }
        except Exception as e:
            log.warning("gepa peer: GEPA failed, returning the seed prompt: %s: %s", type(e).__name__, e)
            detail["error"] = f"{type(e).__name__}: {e}"
    detail["fallback_to_seed"] = "error" in detail
    detail |= {
        k: v
        for k, v in asdict(ledger).items()
        if k not in ("rollouts", "calls", "prompt_tokens", "completion_tokens", "seconds")
    }
    detail["budget_unspent"] = budget - ledger.rollouts
    return PeerResult(
        name="gepa",
        system=best,
        template=ctx.template,
        rollouts=ledger.rollouts,
        calls=ledger.calls,
        prompt_tokens=ledger.prompt_tokens,
        completion_tokens=ledger.completion_tokens,
        seconds=adapter.elapsed(),
        detail=detail,
    )
