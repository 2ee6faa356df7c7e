"""The run report: `report.html` plus one PNG per plot, made from what a run directory holds.

Plots: held-out accuracy per epoch (Mean@k with its 95 % interval, Pass@k), reward per step, entropy and
diversity over steps, library size, library edits, tokens and cost; any other numeric per-step metric gets a
small plot of its own. Every plot is drawn only when its data exists, so a report of an evaluation-only
run, or of a run still in progress, is simply shorter. No secret is shown: the spec on disk is already
redacted, and of the model only its name is.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from memrl.errors import ConfigError
from memrl.runs import RunDir, atomic_write

__all__ = ["ReportResult", "build_report"]

_EPOCH = re.compile(r"^eval-epoch(\d+)$")
#: Per-step keys that are coordinates or settings, not measurements.
_SKIP = {"epoch", "step", "library_version", "groups", "temperature", "step_seconds"}
_GROUPS: list[tuple[str, str, Any]] = [
    ("reward", "Reward per step", lambda k: k in ("mean_reward", "reward") or k.startswith("pass@")),
    ("entropy", "Entropy over steps", lambda k: "entropy" in k),
    ("diversity", "Diversity over steps",
     lambda k: k.startswith(("vendi", "distinct", "diversity", "redundant")) or k == "mixed_fraction"),
    ("library", "Library size", lambda k: k in ("lessons", "library_words", "library_tokens")),
    ("edits", "Library edits per step",
     lambda k: k in ("lessons_proposed", "rejected_ops", "merged", "pruned", "learned_groups")
     or k.startswith("ops.")),
]  # fmt: skip


class ReportResult(BaseModel):
    html: Path
    pngs: list[Path]
    plotted: list[str]  # the metric keys drawn


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("memrl report needs matplotlib: pip install 'memrl[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in row.items():
        key = f"{prefix}{k}"
        if isinstance(v, bool) or key.startswith("usage."):
            continue
        if isinstance(v, (int, float)):
            out[key] = float(v)
        elif isinstance(v, dict) and k != "usage":
            out.update(_flat(v, f"{key}."))
    return out


def _heldout(run: RunDir, results: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(epoch, score) from results.json, else scored from the per-item eval-epochN.jsonl files."""
    from memrl.metrics import score_items
    from memrl.types import ItemResult

    found = {int(m.group(1)): r["score"] for k, r in results.items()
             if (m := _EPOCH.match(k)) and isinstance(r, dict) and "score" in r}  # fmt: skip
    for p in sorted(run.path.glob("eval-epoch*.jsonl")):
        m = _EPOCH.match(p.stem)
        if not m or int(m.group(1)) in found:
            continue
        rows = [ItemResult.model_validate(r) for r in run.read_jsonl(p.name)]
        if rows:
            k = len(rows[0].samples)
            found[int(m.group(1))] = score_items([r.n_correct for r in rows], k).model_dump()
    return sorted(found.items())


def _save(fig: Any, plt: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _lines(plt: Any, path: Path, title: str, xs: list[float], series: dict[str, list[float | None]]) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    # The lesson count shares a plot with word and token counts: it gets an axis of its own.
    right = ax.twinx() if "lessons" in series and len(series) > 1 else None
    for i, (name, ys) in enumerate(series.items()):
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
        on = right if right is not None and name == "lessons" else ax
        if pts:
            on.plot(
                [p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=name, color=f"C{i}"
            )
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if right is not None:
        right.set_ylabel("lessons")
        h2, l2 = right.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, fontsize=8)
    return _save(fig, plt, path)


def _heldout_plot(plt: Any, path: Path, points: list[tuple[int, dict[str, Any]]]) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    xs = [e for e, _ in points]
    means = [s["mean_at_k"] for _, s in points]
    lo = [m - s["mean_ci"][0] for m, (_, s) in zip(means, points, strict=True)]
    hi = [s["mean_ci"][1] - m for m, (_, s) in zip(means, points, strict=True)]
    k = points[0][1].get("k", "k")
    ax.errorbar(xs, means, yerr=[lo, hi], marker="o", capsize=4, label=f"Mean@{k} (95% CI)")
    ax.plot(xs, [s["pass_at_k"] for _, s in points], marker="s", label=f"Pass@{k}")
    ax.set_xticks(xs)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epoch (0 = before learning)")
    ax.set_title("Held-out accuracy per epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


def _usage_plot(plt: Any, path: Path, xs: list[float], metrics: list[dict[str, Any]]) -> Path | None:
    usages = [m.get("usage") or {} for m in metrics]
    phases = sorted({p for u in usages for p in u if p != "total"})
    if not any(u.get("total") for u in usages):
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for p in phases:
        a1.plot(xs, [u.get(p, {}).get("total_tokens", 0) for u in usages], marker="o", markersize=3, label=p)
    a1.plot(xs, [u.get("total", {}).get("total_tokens", 0) for u in usages], "k--", label="total")
    a1.set_title("Tokens (cumulative)")
    a2.plot(xs, [u.get("total", {}).get("cost_usd", 0.0) for u in usages], marker="o", markersize=3)
    a2.set_title("Cost, USD (cumulative)")
    for ax in (a1, a2):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    a1.legend(fontsize=8)
    return _save(fig, plt, path)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


_CSS = """body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}.muted{color:#777}"""
# Marks each image as loaded or broken once the page has loaded (a headless browser can read it back).
_SCRIPT = """window.addEventListener('load',()=>{document.querySelectorAll('img').forEach(i=>{
i.dataset.loaded=(i.complete&&i.naturalWidth>0)?'yes':'no';});document.body.dataset.ready='yes';});"""


def build_report(run_dir: str | Path, out_dir: str | Path | None = None) -> ReportResult:
    """Write `report.html` and its PNGs (into `out_dir`, the run directory by default)."""
    run = RunDir(run_dir)
    if not (run.path / "spec.yaml").is_file():
        raise ConfigError(f"{run.path} is not a memrl run directory (no spec.yaml)")
    out = Path(out_dir) if out_dir else run.path
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    spec = yaml.safe_load((run.path / "spec.yaml").read_text()) or {}
    res = run.read_json("results.json", default={}) or {}
    results = res.get("results", {}) if isinstance(res, dict) else {}
    metrics = [m for m in run.read_jsonl("metrics.jsonl") if isinstance(m.get("step"), (int, float))]
    xs = [float(m["step"]) for m in metrics]
    flat = [_flat(m) for m in metrics]
    keys = sorted({k for f in flat for k in f} - _SKIP)

    figures: list[tuple[str, Path]] = []
    heldout = _heldout(run, results)
    if heldout:
        figures.append(("Held-out accuracy per epoch", _heldout_plot(plt, plots / "heldout.png", heldout)))
    plotted: list[str] = []
    for name, title, wanted in _GROUPS:
        chosen = [k for k in keys if wanted(k) and k not in plotted]
        if chosen and xs:
            series = {k: [f.get(k) for f in flat] for k in chosen}
            figures.append((title, _lines(plt, plots / f"{name}.png", title, xs, series)))
            plotted += chosen
    usage_png = _usage_plot(plt, plots / "usage.png", xs, metrics) if xs else None
    if usage_png:
        figures.append(("Tokens and cost", usage_png))
    for k in (k for k in keys if k not in plotted):
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", k)
        figures.append((k, _lines(plt, plots / f"metric-{safe}.png", k, xs, {k: [f.get(k) for f in flat]})))
        plotted.append(k)

    model = spec.get("model", {})
    model_name = model.get("name", "?") if isinstance(model, dict) else str(model)
    total = (res.get("usage") or (metrics[-1].get("usage") if metrics else {}) or {}).get("total", {})
    summary = [
        ["task", spec.get("name", "?")], ["algorithm", spec.get("algorithm", "?")], ["model", model_name],
        ["status", res.get("status", "in progress")], ["steps", len(metrics)],
        ["tokens", f"{int(total.get('total_tokens', 0)):,}"], ["cost", f"${float(total.get('cost_usd', 0)):.4f}"],
        ["calls", f"{int(total.get('calls', 0))} (+{int(total.get('cached_calls', 0))} from cache)"],
    ]  # fmt: skip
    if reuse := res.get("prompt_reuse"):
        summary.append(["local prompt tokens", f"{reuse['evaluated_tokens']:,} evaluated, "
                        f"{reuse['reused_tokens']:,} reused ({100 * reuse.get('share', 0):.0f} %)"])  # fmt: skip
    parts = [f"<h1>memrl run report: {html.escape(str(spec.get('name', run.path.name)))}</h1>",
             _table(["", ""], summary)]  # fmt: skip
    evals = [(k, r["score"]) for k, r in results.items() if isinstance(r, dict) and "score" in r]
    if evals:
        parts.append("<h2>Held-out evaluation</h2>")
        parts.append(_table(["evaluation", "items", "k", "Mean@k", "95% CI", "Pass@k"], [
            [k, s["n_items"], s["k"], _pct(s["mean_at_k"]), f"{_pct(s['mean_ci'][0])}–{_pct(s['mean_ci'][1])}",
             _pct(s["pass_at_k"])] for k, s in evals]))  # fmt: skip
    parts.append("<h2>Plots</h2>" if figures else '<p class="muted">Nothing to plot yet.</p>')
    pngs = []
    for title, png in figures:
        rel = png.relative_to(out).as_posix()
        parts.append(f'<figure><img src="{html.escape(rel)}" alt="{html.escape(title)}">'
                     f"<figcaption>{html.escape(title)}</figcaption></figure>")  # fmt: skip
        pngs.append(png)
    lib = run.read_json("library.json")
    if isinstance(lib, dict) and lib.get("lessons"):
        active = [x for x in lib["lessons"] if x.get("status", "active") == "active"]
        parts.append(f"<h2>Experience library (version {html.escape(str(lib.get('version')))}, "
                     f"{len(active)} lessons)</h2>")  # fmt: skip
        parts.append(_table(["id", "lesson", "helpful", "harmful"],
                            [[x["id"], x["text"], x.get("helpful", 0), x.get("harmful", 0)] for x in active]))  # fmt: skip
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>memrl report</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}<script>{_SCRIPT}</script></body></html>")  # fmt: skip
    target = out / "report.html"
    atomic_write(target, page)
    return ReportResult(html=target, pngs=pngs, plotted=plotted)
