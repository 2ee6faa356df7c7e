"""`bench/results/performance.json`: the performance figures the benches measure, one key each, merged into
the file so every other bench's keys stay, each with its value, the command that produced it, the date and
the load average it ran under."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import sys
from pathlib import Path

from memrl.runs import atomic_write

__all__ = ["RESULTS", "save_figures"]

RESULTS = Path(__file__).parent / "results" / "performance.json"


def save_figures(
    script: str, figures: dict[str, float], load: tuple[float, ...], path: Path = RESULTS
) -> None:
    """Merge `figures` (key → value) into `path`, written atomically; `script` is the bench's file name."""
    data = json.loads(path.read_text()) if path.exists() else {}
    stamp = {
        "command": shlex.join(["python", f"bench/{script}", *sys.argv[1:]]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load": [round(x, 2) for x in load],
    }
    data |= {key: {"value": round(value, 3), **stamp} for key, value in figures.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
