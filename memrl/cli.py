"""The `memrl` command: a thin typer layer over the library. It parses, calls, prints."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from memrl.errors import MemrlError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="memrl: learn prompt memory from rollouts."
)
console = Console(stderr=True)
out = Console()

__all__ = ["app", "main"]


def _fail(msg: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _summary_table(res: Any) -> Table:
    t = Table(title=f"memrl run — {res.status}", show_lines=False)
    for col in ("eval", "items", "k", "Mean@k %", "95% CI", "Pass@k %", "trunc %", "items/s"):
        if col == "eval":
            t.add_column(col, no_wrap=True, min_width=11)
        else:
            t.add_column(col, justify="right")
    for label, r in res.results.items():
        if not isinstance(r, dict) or "score" not in r:
            continue
        s = r["score"]
        t.add_row(
            label, str(s["n_items"]), str(s["k"]), _pct(s["mean_at_k"]),
            f"{_pct(s['mean_ci'][0])}–{_pct(s['mean_ci'][1])}", _pct(s["pass_at_k"]),
            _pct(s["truncated_share"]), f"{r['items_per_s']:.2f}",
        )  # fmt: skip
    return t


class _Bars:
    """The runner's progress reports as rich bars, one per label."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.ids: dict[str, Any] = {}

    def start(self, label: str, total: int) -> None:
        if label not in self.ids:
            self.ids[label] = self.progress.add_task(label, total=total)

    def advance(self, label: str, n: int = 1) -> None:
        if label in self.ids and n:
            self.progress.advance(self.ids[label], n)


@app.command()
def run(
    task: Annotated[Path, typer.Argument(help="The task file (task.yaml).")],
    config: Annotated[
        list[str] | None, typer.Option("-c", "--config", help="Override: key.path=value")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the latest run of this task.")] = False,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Use this run directory.")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Run a task file: evaluate, or learn memory (tfgrpo, memento) and evaluate it."""
    from memrl.runner import run_task
    from memrl.spec import load_spec

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        spec = load_spec(task, config or [])
    except MemrlError as e:
        _fail(str(e))
        return
    _run_and_show(spec, lambda setup: run_task(spec, resume=resume, run_dir=run_dir, setup=setup))


def _run_and_show(spec: Any, start: Callable[[Callable[[Any], None]], Any]) -> None:
    """Call `start(setup)` (run_task or resume_task) under progress bars, then print what it returns."""
    from memrl.context import RunContext

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console, transient=False,
    )  # fmt: skip

    def setup(ctx: RunContext) -> None:
        ctx.progress = _Bars(progress)
        console.print(f"run directory: {ctx.run.path}")

    console.print(f"[dim]{spec.name}: {spec.algorithm} with {spec.model.name} (starting…)[/]")
    try:
        with progress:
            res = start(setup)
    except MemrlError as e:
        _fail(str(e))
        return
    out.print(_summary_table(res))
    learned = res.results.get("learning")
    if learned:
        from memrl.metrics import PairedDiff

        change = ""
        if learned.get("paired"):
            paired = PairedDiff.model_validate(learned["paired"])
            change = f"; paired difference on the same held-out items {paired.sentence()}"
        out.print(
            f"learned {learned['lessons']} lessons in {learned['steps']} steps (library version "
            f"{learned['library_version']}); Mean@k {_pct(learned['mean_at_k_before'])}% → "
            f"{_pct(learned['mean_at_k_after'])}%{change} · memrl library show {res.run_dir}"
        )
    tot = res.usage.get("total", {})
    out.print(
        f"tokens {int(tot.get('total_tokens', 0)):,} · cost ${tot.get('cost_usd', 0.0):.4f} · "
        f"calls {int(tot.get('calls', 0))} (+{int(tot.get('cached_calls', 0))} from cache) · {res.seconds:.1f}s · {res.run_dir}"
    )
    if res.prompt_reuse is not None:
        out.print(res.prompt_reuse.sentence())
    if res.status != "finished":
        console.print(f"[yellow]{res.message}[/] — raise the budget and rerun with --resume")
        raise typer.Exit(3)


@app.command("resume")
def resume_cmd(
    run_dir: Annotated[Path, typer.Argument(help="The run directory to continue.")],
    config: Annotated[
        list[str] | None, typer.Option("-c", "--config", help="Override: key.path=value")
    ] = None,
) -> None:
    """Continue an interrupted run from its directory."""
    from memrl.runner import resume_task
    from memrl.runs import RunDir

    if not (run_dir / "spec.yaml").exists():
        _fail(f"{run_dir} is not a memrl run directory (no spec.yaml)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        spec = RunDir(run_dir).load_spec(config or [])
    except MemrlError as e:
        _fail(str(e))
        return
    _run_and_show(spec, lambda setup: resume_task(run_dir, config, setup=setup))


@app.command("entropy")
def entropy_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A tfgrpo run directory.")],
    model: Annotated[str, typer.Option(help="Scoring model: 'local' or 'local:/path/model.gguf'.")] = "local",
    aggregation: Annotated[
        str, typer.Option(help="seq-mean-token-mean or token-mean")
    ] = "seq-mean-token-mean",
) -> None:
    """Token and semantic entropy per step under a local model, and the fitted entropy → reward law."""
    from memrl.entropy.posthoc import run_entropy
    from memrl.entropy.tracking import open_scorer

    if aggregation not in ("seq-mean-token-mean", "token-mean"):
        _fail(f"--aggregation must be seq-mean-token-mean or token-mean, not {aggregation!r}")
    try:
        rep = run_entropy(run_dir, open_scorer(model), aggregation)
    except MemrlError as e:
        _fail(str(e))
        return
    t = Table(title=f"entropy of {run_dir}")
    for col in ("step", "mean reward", "token entropy", "semantic entropy"):
        t.add_column(col, justify="right")
    for st in rep.steps:
        t.add_row(str(st.step), f"{st.reward:.3f}", f"{st.token_entropy:.3f}", f"{st.semantic_entropy:.3f}")
    out.print(t)
    if rep.a is not None:
        out.print(
            f"R = −{rep.a:.4f}·e^H + {rep.b:.4f}  (R² {rep.r2:.2f}); predicted ceiling at H = 0: {rep.ceiling:.3f}"
        )
    else:
        out.print(rep.note)
    if rep.plot:
        out.print(f"plot: {rep.plot}")


@app.command("serve-local")
def serve_local(
    model: Annotated[
        str, typer.Argument(help="'local' (bundled SmolLM2) or 'local:/path/model.gguf'")
    ] = "local",
    port: Annotated[int | None, typer.Option(help="Port (a free one by default).")] = None,
    n_ctx: Annotated[int, typer.Option(help="Context size.")] = 2048,
) -> None:
    """Serve a local GGUF model over the OpenAI API on loopback, for other processes."""
    from memrl.llm.local import LocalServer, resolve_gguf

    try:
        srv = LocalServer(resolve_gguf(model), n_ctx=n_ctx, port=port).start()
    except MemrlError as e:
        _fail(str(e))
        return
    out.print(
        f"serving {srv.model_path.name} at {srv.api_base} (ready in {srv.startup_s:.1f}s); Ctrl-C stops it"
    )
    # the server's own default is a repetition penalty of 1.1; memrl's embedded model asks for none (SAMPLER)
    out.print(
        f"use it as: model: {{name: openai/local, api_base: {srv.api_base}, "
        "extra: {extra_body: {repeat_penalty: 1.0}}}",
        highlight=False,
        soft_wrap=True,
    )
    try:
        while srv.proc is not None and srv.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


@app.command("models")
def models_cmd(
    prepare: Annotated[
        str | None, typer.Option(help="Assemble this named model now (e.g. qwen2.5-coder-1.5b).")
    ] = None,
) -> None:
    """List the named local models, whether their weights are installed, and where they are cached."""
    from memrl.llm.catalog import CATALOG, assemble, installed_parts, model_cache_dir, named_model

    if prepare is not None:
        model = named_model(prepare)
        if model is None:
            _fail(f"unknown named model {prepare!r}; known: {', '.join(CATALOG)}")
            return
        try:
            out.print(f"{model.name}: {assemble(model)}", highlight=False, soft_wrap=True)
        except MemrlError as e:
            _fail(str(e))
        return
    table = Table("model", "weights", "install with", "about")
    for m in CATALOG.values():
        try:
            installed_parts(m)
            cached = (model_cache_dir() / m.filename).is_file()
            state = "assembled" if cached else "installed"
        except MemrlError:
            state = "missing"
        table.add_row(f"local:{m.name}", state, escape(m.install_hint), m.description)
    out.print(table)
    out.print(f"cache: {model_cache_dir()}", highlight=False)


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="The run directory.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of the run directory.")
    ] = None,
) -> None:
    """Write report.html with plots (PNG) of a run: accuracy, reward, entropy, diversity, library, cost."""
    from memrl.report import build_report

    try:
        res = build_report(run_dir, out_dir)
    except MemrlError as e:
        _fail(str(e))
        return
    out.print(f"{res.html} ({len(res.pngs)} plots)", highlight=False, soft_wrap=True)


@app.command("compare")
def compare_cmd(
    task: Annotated[Path, typer.Argument(help="The task file (or a run directory with spec.yaml).")],
    memory: Annotated[
        list[str],
        typer.Option(
            "--memory",
            "-m",
            help="A condition (repeat; the first is the baseline): none, a run "
            "directory, a library .json, a chroma directory or URL.",
        ),
    ],  # fmt: skip
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Run directory for all conditions (default runs/compare-NAME)."),
    ] = None,
    config: Annotated[
        list[str] | None, typer.Option("-c", "--config", help="Override: key.path=value")
    ] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Does this memory help on my model and my data? Held-out accuracy under each memory, paired against the first."""
    from memrl.compare import compare_memories, load_compare_spec

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )  # fmt: skip
    try:
        spec = load_compare_spec(task, config or [])
        console.print(f"[dim]{spec.name}: {len(memory)} conditions with {spec.model.name} (starting…)[/]")
        with progress:
            res = compare_memories(spec, memory, out=out_dir, progress=_Bars(progress))
    except MemrlError as e:
        _fail(str(e))
        return
    out.print(res.markdown(), highlight=False, soft_wrap=True)
    out.print("written: " + ", ".join(res.files.values()), highlight=False, soft_wrap=True)


def _mount() -> None:
    from memrl.library_cli import library_app
    from memrl.memory.cli import memory_app

    app.add_typer(memory_app, name="memory", help="Inspect memory stores.")
    app.add_typer(
        library_app, name="library", help="Show, diff, export or roll back a run's experience library."
    )


_mount()


def _sigterm(_signum: int, _frame: Any) -> None:
    raise SystemExit(143)  # unwinds finally-blocks: the local server and files are closed cleanly


def main() -> None:
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        app()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/] — continue with: memrl run TASK --resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
