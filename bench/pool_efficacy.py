"""Pool the per-item rows of efficacy runs on different split seeds: one paired comparison over all their
held-out items (each item is answered once per condition, and items of different seeds are distinct).

    python bench/pool_efficacy.py bench/results/A/results.json bench/results/B/results.json \
        --base tool --cond tool+cases

Prints each run's paired difference and the pooled one (mean of per-item differences, normal 95 % interval,
won/lost, McNemar's exact p), from the committed rows alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memrl.metrics import paired_difference  # noqa: E402

__all__ = ["pooled_rows"]


def pooled_rows(results: list[dict[str, Any]], base: str, cond: str) -> list[tuple[str, float, float]]:
    """(item id, base score, cond score) of every held-out item of every run, paired by id."""
    out = []
    for res in results:
        rows = {
            name: {r["id"]: r["score"] for r in res["conditions"][name]["items"]} for name in (base, cond)
        }
        if rows[base].keys() != rows[cond].keys():
            raise ValueError(f"{base} and {cond} were scored on different items in one run")
        out += [(i, rows[base][i], rows[cond][i]) for i in rows[base]]
    ids = [i for i, _, _ in out]
    if len(set(ids)) != len(ids):
        raise ValueError("an item appears in two runs: pool runs of different split seeds only")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--base", default="tool")
    ap.add_argument("--cond", default="tool+cases")
    args = ap.parse_args()
    runs = [json.loads(p.read_text()) for p in args.results]
    for path, res in zip(args.results, runs, strict=True):
        rows = pooled_rows([res], args.base, args.cond)
        d = paired_difference([b for _, b, _ in rows], [c for _, _, c in rows])
        print(f"{path.parent.name}: {_line(d, len(rows))}")
    rows = pooled_rows(runs, args.base, args.cond)
    d = paired_difference([b for _, b, _ in rows], [c for _, _, c in rows])
    print(f"pooled: {_line(d, len(rows))}")


def _line(d: Any, n: int) -> str:
    return (
        f"{n} items, diff {d.diff:+.3f} (95 % CI {d.lo:+.3f}, {d.hi:+.3f}), "
        f"{d.wins} won / {d.losses} lost, McNemar p {d.p_mcnemar:.3f}"
    )


if __name__ == "__main__":
    main()
