"""`memrl memory ...`: a thin typer sub-app over the memory library functions."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from memrl.errors import MemrlError
from memrl.memory.stats import MemoryStats, memory_stats

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
