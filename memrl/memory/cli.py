"""`memrl memory ...`: a thin typer sub-app over the memory library functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from memrl.errors import ConfigError, MemrlError
from memrl.memory.stats import MemoryStats, memory_stats
from memrl.memory.store import Memory

__all__ = ["memory_app", "render_stats"]

memory_app = typer.Typer(
    help="Inspect memrl memory (a chroma directory or a chroma server).", no_args_is_help=True
)


@memory_app.callback()
def _group() -> None:
    """Inspect memrl memory (a chroma directory or a chroma server)."""


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds / span:.1f}{unit}"
    return f"{seconds:.0f}s"


def render_stats(stats: MemoryStats) -> Table:
    """A rich table with one row per store."""
    disk = f", {_size(stats.disk_bytes)} on disk" if stats.disk_bytes is not None else ""
    table = Table(title=f"memory at {stats.location}: {stats.total_records} records{disk}")
    for col in (
        "namespace",
        "store",
        "records",
        "text",
        "~tokens",
        "vectors",
        "oldest",
        "newest",
        "uses",
        "unused",
    ):
        table.add_column(col, justify="left" if col in ("namespace", "store") else "right")
    table.add_column("feedback / embedder")
    for s in stats.stores:
        note = f"+{s.helpful} -{s.harmful}, {s.active} active; " if s.helpful is not None else ""
        table.add_row(
            s.namespace,
            s.kind,
            str(s.count),
            _size(s.text_bytes),
            str(s.approx_tokens),
            _size(s.vector_bytes),
            _age(s.oldest_age_s),
            _age(s.newest_age_s),
            str(s.uses),
            str(s.never_used),
            f"{note}{s.embedder} ({s.dim})" + (f", {s.invalid} invalid" if s.invalid else ""),
        )
    return table


@memory_app.command("stats")
def stats_command(
    location: str = typer.Argument(..., help="Memory directory, or http://host:port of a chroma server."),
    as_json: bool = typer.Option(False, "--json", help="Print the stats as JSON instead of a table."),
) -> None:
    """Counts, sizes, ages and usage of every store."""
    console = Console()
    try:
        stats = memory_stats(location)
    except MemrlError as e:
        Console(stderr=True).print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None
    if as_json:
        console.print_json(stats.model_dump_json())
        return
    console.print(render_stats(stats))
    if stats.other_collections:
        console.print(f"other collections (not memrl's): {', '.join(stats.other_collections)}")


def _fail(e: Exception) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _open(location: str, namespace: str, embedder: str | None, *, must_exist: bool = True) -> Memory:
    """The memory at a run directory's `memory/`, a memory directory or a chroma URL, opened with the
    embedder its stores were written with (or `embedder`)."""
    from memrl.cases.view import memory_location
    from memrl.memory.store import open_memory

    loc = memory_location(location)
    if embedder is None and (
        must_exist or Path(loc, "chroma.sqlite3").is_file() or str(loc).startswith("http")
    ):
        stores = [s for s in memory_stats(loc).stores if s.namespace == namespace]
        if must_exist and not stores:
            raise ConfigError(
                f"{loc} has no memrl stores in namespace {namespace!r}; see `memrl memory stats {loc}`"
            )
        embedder = next((s.embedder for s in stores if s.embedder), None)
    return open_memory(loc, embedder=embedder, namespace=namespace)


@memory_app.command("export")
def export_command(
    location: Annotated[str, typer.Argument(help="Run directory, memory directory, or http://host:port.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The JSON file to write.")],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="tfgrpo (worked cases), memento, ...")
    ] = "default",
) -> None:
    """Every store of one namespace as versioned JSON (records, not vectors)."""
    from memrl.memory.export import export_memory

    try:
        doc = export_memory(_open(location, namespace, None), output)
    except MemrlError as e:
        raise _fail(e) from None
    counts = ", ".join(f"{len(v)} {k}" for k, v in doc["stores"].items())
    Console().print(
        f"{output}: {counts} (namespace {namespace}, schema {doc['schema_version']})", highlight=False
    )


@memory_app.command("import")
def import_command(
    location: Annotated[
        str, typer.Argument(help="Run directory, memory directory (created), or a chroma URL.")
    ],
    source: Annotated[Path, typer.Argument(help="A file written by `memrl memory export`.")],
    namespace: Annotated[str, typer.Option("--namespace", "-n")] = "default",
    embedder: Annotated[str | None, typer.Option(help="Embedder for a new memory (default: MiniLM).")] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Each store in the export keeps only its records.")
    ] = False,
) -> None:
    """Load an export into a memory, re-embedding every record with the target's embedder."""
    from memrl.memory.export import import_memory

    try:
        written = import_memory(_open(location, namespace, embedder, must_exist=False), source,
                                mode="replace" if replace else "upsert")  # fmt: skip
    except MemrlError as e:
        raise _fail(e) from None
    Console().print(", ".join(f"{n} {k}" for k, n in written.items()) + f" written (namespace {namespace})")


@memory_app.command("show")
def show_command(
    location: Annotated[str, typer.Argument(help="Run directory, memory directory, or http://host:port.")],
    cases: Annotated[
        bool, typer.Option("--cases", help="Show the case store (the only view so far).")
    ] = True,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Default: the one holding cases.")
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Rank as retrieval would for this task.")
    ] = None,
    q_file: Annotated[Path | None, typer.Option("--q-file", help="cases_q.json / memento_q*.json.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows to show.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print the view as JSON.")] = False,
) -> None:
    """Cases with their reward, uses and learned utility Q: what the agent retrieves, and why."""
    from memrl.cases.view import case_view

    try:
        view = case_view(location, namespace=namespace, query=query, q_path=q_file, limit=limit)
    except MemrlError as e:
        raise _fail(e) from None
    console = Console()
    if as_json:
        console.print_json(view.model_dump_json())
        return
    q = (
        f"Q from {view.q_path} (θ = {', '.join(f'{t:.3f}' for t in view.theta or [])})"
        if view.q_path
        else "no Q model"
    )
    title = f"{view.total} cases in {view.location} [{view.namespace}]; {q}"
    console.print(
        title + (f"; ranked for {view.query!r}" if view.query else ""), soft_wrap=True, highlight=False
    )
    table = Table()
    for col in ("id", "task", "reward", "ok", "uses", "utility b", "n"):
        table.add_column(col, justify="left" if col in ("id", "task") else "right")
    if view.query:
        for col in ("sim", "Q", "score"):
            table.add_column(col, justify="right")
    f = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    for r in view.rows:
        task = r.task if len(r.task) <= 70 else r.task[:69] + "…"
        extra = [f(r.similarity), f(r.q), f(r.score)] if view.query else []
        table.add_row(r.id, task, f"{r.reward:.2f}", "✓" if r.success else "✗", str(r.uses), f(r.utility),
                      str(r.updates), *extra)  # fmt: skip
    console.print(table)
