"""What `memrl compare` writes: the markdown table, the per-item rows and the plot (also used by the bench)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from memrl.inject import Injection
from memrl.runs import atomic_write
from memrl.types import ItemResult

if TYPE_CHECKING:
    from memrl.compare import CompareResult

__all__ = ["markdown", "plot", "plot_conditions", "write_items"]

_HEAD = (
    "| memory | lessons | memory tokens / item | accuracy (95 % CI) | vs {first}: paired diff (95 % CI) "
    "| won / lost (McNemar p) | verdict | tokens | cost $ | calls paid / replayed | s |"
)


def markdown(res: CompareResult) -> str:
    """The table, then one verdict line per condition."""
    first = res.conditions[0].name if res.conditions else "-"
    how = (
        "greedy"
        if res.temperature == 0 and res.k == 1
        else f"{res.k} sample(s) at temperature {res.temperature}"
    )
    lines = [
        f"Held-out accuracy (Mean@{res.k}) of {res.model} on `{res.task}`: {len(res.item_ids)} items, {how}; "
        f"paired differences against `{first}` on the same items. Run directory: {res.run_dir}",
        "",
        _HEAD.format(first=f"`{first}`"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in res.conditions:
        s, d = c.score, c.vs_first
        diff = f"{d.diff:+.3f} ({d.lo:+.3f}, {d.hi:+.3f})" if d else "—"
        wl = f"{d.wins} / {d.losses} (p {d.p_mcnemar:.2f})" if d else "—"
        lines.append(
            f"| {c.name} | {c.lessons} | {c.memory_tokens:.0f} | {s.mean_at_k:.3f} ({s.mean_ci[0]:.3f}, "
            f"{s.mean_ci[1]:.3f}) | {diff} | {wl} | {c.verdict} | {c.usage.total_tokens:,} | "
            f"{c.usage.cost_usd:.4f} | {c.paid.calls} / {c.paid.cached_calls} | {c.seconds:.0f} |"
        )
    lines.append("")
    lines += [f"- {line}" for line in res.sentences()]
    lines += [f"- note on {c.name}: {c.note}" for c in res.conditions if c.note]
    return "\n".join(lines) + "\n"


def write_items(
    path: Path, res: CompareResult, answers: Sequence[tuple[list[ItemResult], dict[str, Injection]]]
) -> None:
    """One JSON line per (condition, item): its accuracy, answers, the memory it was shown, the change vs first."""
    first = res.conditions[0].per_item if res.conditions else []
    lines = []
    for cond, (rows, shots) in zip(res.conditions, answers, strict=True):
        for i, r in enumerate(rows):
            shot = shots[r.item_id]
            lines.append(json.dumps({
                "condition": cond.name, "label": cond.label, "item_id": r.item_id, "question": r.question,
                "answer": r.answer, "accuracy": cond.per_item[i], "n_correct": r.n_correct, "k": len(r.samples),
                "diff_vs_first": cond.per_item[i] - first[i], "extracted": [v.extracted for v in r.verdicts],
                "truncated": sum(c.truncated for c in r.samples), "memory_tokens": shot.tokens,
                "lessons": shot.lessons, "cases": shot.cases,
            }, ensure_ascii=False))  # fmt: skip
    atomic_write(path, "".join(line + "\n" for line in lines))


def plot(res: CompareResult, path: Path) -> Path | None:
    """Accuracy with intervals per condition, and each paired difference against the first."""
    first = res.conditions[0].name if res.conditions else "-"
    return plot_conditions(
        path,
        [c.name for c in res.conditions],
        [c.score.mean_at_k for c in res.conditions],
        [c.score.mean_ci for c in res.conditions],
        [(c.name, c.vs_first.diff, c.vs_first.lo, c.vs_first.hi) for c in res.conditions if c.vs_first],
        title=f"{res.model} — {len(res.item_ids)} held-out items",
        diff_label=f"paired difference vs {first} (95 % CI)",
    )


def plot_conditions(
    path: Path,
    names: Sequence[str],
    acc: Sequence[float],
    ci: Sequence[tuple[float, float] | Sequence[float]],
    diffs: Sequence[tuple[str, float, float, float]],
    *,
    title: str,
    diff_label: str,
) -> Path | None:
    """Two panels: bars of accuracy with 95 % intervals; paired differences (name, diff, lo, hi) with theirs.
    None when matplotlib is not installed (`pip install matplotlib`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    err = [[a - c[0] for a, c in zip(acc, ci, strict=True)], [c[1] - a for a, c in zip(acc, ci, strict=True)]]
    ax1.bar(list(names), list(acc), yerr=err, capsize=4, color="#4c72b0")
    ax1.set_ylabel("held-out accuracy")
    ax1.set_ylim(0, 1)
    ax1.set_title(title)
    if diffs:
        d = [x for _, x, _, _ in diffs]
        ax2.errorbar(d, range(len(d)), xerr=[[x - lo for _, x, lo, _ in diffs], [hi - x for _, x, _, hi in diffs]],
                     fmt="o", capsize=4)  # fmt: skip
        ax2.axvline(0, color="grey", lw=1)
        ax2.set_yticks(range(len(d)), [n for n, _, _, _ in diffs])
        ax2.set_xlabel(diff_label)
    ax1.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
