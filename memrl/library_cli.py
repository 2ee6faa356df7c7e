"""`memrl library show|diff|export|rollback RUN`: look at and manage a run's experience library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from memrl.errors import MemrlError
from memrl.library import Library

library_app = typer.Typer(
    no_args_is_help=True, help="Show, diff, export or roll back a run's experience library."
)
out = Console()
err = Console(stderr=True)

__all__ = ["library_app"]

Run = Annotated[Path, typer.Argument(help="A run directory (runs/NAME).")]


def _load(run: Path, version: int | None = None) -> Library:
    if not (run / "library.json").exists():
        err.print(f"[bold red]error:[/] {run} has no library.json (is it a tfgrpo run directory?)")
        raise typer.Exit(2)
    try:
        return Library.load(run, version=version)
    except MemrlError as e:
        err.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None


@library_app.command()
def show(
    run: Run,
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="A saved version (default: latest).")
    ] = None,
) -> None:
    """List the active lessons with their counters and provenance."""
    lib = _load(run, version)
    t = Table(
        title=f"library version {lib.version}: {len(lib)} active lessons (versions saved: {len(lib.versions)})"
    )
    # + / −: rollouts shown the lesson judged right / wrong; won / lost: groups where the rollouts shown it
    # did better / worse than those of the same group not shown it (the evidence pruning uses)
    for col in ("id", "rev", "step", "+", "−", "won", "lost", "sources", "lesson"):
        t.add_column(col, overflow="fold")
    for x in lib.active():
        protected = " (rare success)" if x.metadata.get("rare_success") else ""
        t.add_row(x.id, str(x.version), str(x.created_step), str(x.helpful), str(x.harmful), str(x.wins),
                  str(x.losses), str(len(x.source_rollouts)), x.text + protected)  # fmt: skip
    out.print(t)
    _show_skills(run)
    _show_gate_rejections(run)


def _show_skills(run: Path) -> None:
    """Verified skills (tfgrpo.skills): status, where each came from and its verification record."""
    path = run / "skills" / "skills.json"
    if not path.exists():
        return
    from memrl.skills import Skill

    skills = [Skill.model_validate(d) for d in json.loads(path.read_text(encoding="utf-8"))]
    t = Table(title=f"skills: {len(skills)} ({sum(s.status == 'trusted' for s in skills)} trusted; only trusted "
                    "ones reach held-out items)")  # fmt: skip
    for col in ("id", "status", "step", "from", "solved", "failed", "function", "code"):
        t.add_column(col, overflow="fold")
    for s in skills:
        t.add_row(s.id, s.status, str(s.step), s.origin, str(len(s.solved)), str(len(s.failed)), s.signature,
                  s.code if len(s.code) <= 600 else s.code[:600] + "…")  # fmt: skip
    out.print(t)


def _show_gate_rejections(run: Path) -> None:
    """Steps the no-harm gate rolled back (tfgrpo.gate), with their validation scores and edits."""
    events = run / "events.jsonl"
    rows = []
    if events.exists():
        for line in events.read_text(encoding="utf-8").splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == "gate_rejected":
                rows.append(e)
    if not rows:
        return
    t = Table(
        title=f"rejected by the no-harm gate: {len(rows)} steps rolled back (validation: before → after)"
    )
    for col in ("step", "validation", "added", "changed", "deleted", "cases / skills"):
        t.add_column(col, overflow="fold")
    for e in rows:
        other = [f"{e['cases_removed']} cases removed"] if e.get("cases_removed") else []
        other += [f"trust reset: {', '.join(e['skills_reset'])}"] if e.get("skills_reset") else []
        t.add_row(str(e["step"]), f"{e['before']:.3f} → {e['after']:.3f}", "\n".join(e.get("added", [])),
                  "\n".join(e.get("changed", [])), "\n".join(e.get("deleted", [])), "\n".join(other))  # fmt: skip
    out.print(t)


@library_app.command()
def diff(run: Run, a: int, b: int) -> None:
    """Lessons added, changed and deleted between versions A and B."""
    lib = _load(run)
    try:
        d = lib.diff(a, b)
    except MemrlError as e:
        err.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None
    if d.is_empty():
        out.print(f"versions {a} and {b} hold the same lessons")
    for x in d.added:
        out.print(f"[green]+ {x.id}[/] {x.text}")
    for old, new in d.changed:
        out.print(f"[yellow]~ {old.id}[/] {old.text}\n  [yellow]→[/] {new.text}")
    for x in d.deleted:
        out.print(f"[red]- {x.id}[/] {x.text}")


@library_app.command()
def export(
    run: Run,
    dest: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the JSON (a .md sits beside it).")
    ] = Path("library-export.json"),
    version: Annotated[int | None, typer.Option("--version", "-v")] = None,
) -> None:
    """Write a deployable export: JSON with a schema version plus readable markdown."""
    path = _load(run, version).export(dest)
    out.print(f"wrote {path} and {path.with_suffix('.md')}")


@library_app.command()
def rollback(run: Run, version: int) -> None:
    """Make an earlier version current again (recorded as a new version; ids are never reused)."""
    lib = _load(run)
    try:
        new = lib.rollback(version)
    except MemrlError as e:
        err.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None
    lib.save(run)
    out.print(f"version {new} now holds the lessons of version {version} ({len(lib)} active)")


@library_app.command()
def stats(
    run: Run,
    embedder: Annotated[
        str | None, typer.Option(help="Embedder name (default: the run's diversity.embedder).")
    ] = None,
) -> None:
    """Diversity of the library across its saved versions: size, tokens, Vendi score, Vendi/n, near-duplicates."""
    from memrl.diversity.stats import version_stats

    lib = _load(run)
    if embedder is None and (run / "spec.yaml").exists():
        import yaml

        embedder = (yaml.safe_load((run / "spec.yaml").read_text()).get("diversity") or {}).get("embedder")
    try:
        rows = version_stats(lib, embedder)
    except MemrlError as e:
        err.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None
    t = Table(title=f"library diversity across {len(rows)} versions")
    for col in ("version", "lessons", "tokens", "Vendi", "Vendi/n", "near-dup pairs", "added", "deleted"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(str(r.version), str(r.lessons), str(r.tokens), f"{r.vendi:.2f}", f"{r.vendi_per_item:.3f}",
                  str(r.redundant_pairs), str(r.added), str(r.deleted))  # fmt: skip
    out.print(t)
