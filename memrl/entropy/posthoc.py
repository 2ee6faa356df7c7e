"""`memrl entropy RUN`: entropy of a finished Training-Free GRPO run, per step, and the entropy → reward law.

Every step's rollouts (saved with their prompts in `rollouts/step-NNNN.json`) are scored teacher-forced
under a local model; the semantic entropy of each group's answers comes from the same file; the law
R = −a·e^H + b is fitted over steps and its predicted ceiling b − a reported. Results go to
`entropy.json` and `entropy.png` in the run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from memrl.entropy.measures import answer_key, discrete_semantic_entropy, fit_entropy_reward_law
from memrl.entropy.tracking import token_entropy
from memrl.errors import ConfigError
from memrl.runs import RunDir, atomic_write
from memrl.types import Rollout

__all__ = ["StepEntropy", "EntropyReport", "run_entropy"]


class StepEntropy(BaseModel):
    step: int
    reward: float
    token_entropy: float
    semantic_entropy: float


class EntropyReport(BaseModel):
    steps: list[StepEntropy]
    a: float | None = None
    b: float | None = None
    r2: float | None = None
    ceiling: float | None = None
    note: str = ""
    plot: str | None = None


def _groups(run: RunDir, path: Path) -> list[list[Rollout]]:
    raw = run.read_json(str(path.relative_to(run.path)))
    return [[Rollout.model_validate({k: v for k, v in r.items() if k != "lessons"}) for r in g] for g in raw]


def run_entropy(run_dir: str | Path, scorer: Any, aggregation: str = "seq-mean-token-mean") -> EntropyReport:
    run = RunDir(run_dir)
    files = sorted((run.path / "rollouts").glob("step-*.json"))
    if not files:
        raise ConfigError(f"{run.path} has no rollouts/step-*.json: entropy needs a tfgrpo run directory")
    steps = []
    for f in files:
        groups = _groups(run, f)
        if not groups or not groups[0][0].messages:
            raise ConfigError(
                f"{f} has no prompts (written by an older memrl); rerun the task to measure entropy"
            )
        ent = token_entropy(scorer, groups, aggregation)
        rewards = [r.verdict.reward for g in groups for r in g]
        sem = [
            discrete_semantic_entropy([answer_key(r.verdict.extracted, r.completion.text) for r in g])
            for g in groups
        ]
        steps.append(
            StepEntropy(
                step=int(f.stem.split("-")[1]),
                reward=sum(rewards) / len(rewards),
                token_entropy=sum(ent) / len(ent),
                semantic_entropy=sum(sem) / len(sem),
            )
        )
    report = EntropyReport(steps=steps)
    try:
        fit = fit_entropy_reward_law([s.token_entropy for s in steps], [s.reward for s in steps])
        report.a, report.b, report.r2, report.ceiling = fit.a, fit.b, fit.r2, fit.ceiling
    except ValueError as e:
        report.note = f"law not fitted: {e}"
    report.plot = _plot(run, report)
    run.write_json("entropy.json", report.model_dump())
    return report


def _plot(run: RunDir, report: EntropyReport) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4))
    h = [s.token_entropy for s in report.steps]
    r = [s.reward for s in report.steps]
    ax.scatter(h, r, c=[s.step for s in report.steps], cmap="viridis", label="steps (colour: step)")
    if report.a is not None and report.b is not None and len(set(h)) > 1:
        xs = np.linspace(0, max(h) * 1.1, 100)
        ax.plot(
            xs, -report.a * np.exp(xs) + report.b, "r--", label=f"R = −{report.a:.3f}·e^H + {report.b:.3f}"
        )
        ax.axhline(
            report.b - report.a, color="grey", lw=0.8, ls=":", label=f"ceiling {report.b - report.a:.3f}"
        )
    ax.set_xlabel("token entropy (nats/token, local model)")
    ax.set_ylabel("mean rollout reward")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = run.file("entropy.png")
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    atomic_write(path, tmp.read_bytes())
    tmp.unlink()
    return str(path)
