"""Ablation: Training-Free GRPO with the diversity controls on and off, same model, data and seeds.

Prints, per condition, Vendi/n of the library, the mixed-group share and the answer entropy over steps,
and held-out Mean@k before and after learning; writes `ablation-diversity.md` in the output folder.

    python bench/ablation_diversity.py tasks/quickstart.yaml --out runs/ablation -c tfgrpo.epochs=2
    python bench/ablation_diversity.py tasks/quickstart.yaml --smoke      # tiny, for CI
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from memrl.runner import run_task
from memrl.runs import RunDir
from memrl.spec import load_spec

CONDITIONS = {
    # the defaults a user gets (MMR injection under an 800-token budget, per-rollout subsets, edit cap 8,
    # rare-success protection, dedup of copies, pruning on paired harm, the collapse alarm)
    "diversity on": ["diversity.enabled=true"],
    "diversity off": ["diversity.enabled=false"],
}
SMOKE = ["data.size=16", "data.test_size=4", "eval.k=2", "tfgrpo.steps_per_epoch=2", "tfgrpo.batch_size=2",
         "tfgrpo.group_size=2", "tfgrpo.epochs=1", "eval.max_tokens=16"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task")
    ap.add_argument("--out", default="runs/ablation-diversity")
    ap.add_argument("-c", dest="overrides", action="append", default=[])
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    rows = []
    for name, ov in CONDITIONS.items():
        spec = load_spec(args.task, [*(SMOKE if args.smoke else []), *args.overrides, *ov])
        run_dir = out / name.replace(" ", "-")
        res = run_task(spec, run_dir=run_dir, resume=(run_dir / "spec.yaml").exists())
        metrics = list(RunDir(run_dir).read_jsonl("metrics.jsonl"))
        learn = res.results.get("learning", {})
        rows.append((name, metrics, learn))
    lines = [
        "| condition | step | lessons | Vendi/n | mixed share | answer entropy | alarm |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, metrics, _ in rows:
        for m in metrics:
            lines.append(
                f"| {name} | {m['step']} | {m['lessons']} | {m['vendi_per_item']:.3f} | {m['mixed_fraction']:.2f} | "
                f"{m['answer_entropy']:.3f} | {'yes' if m['alarm'] else ''} |"
            )
    lines += ["", "| condition | held-out Mean@k before | after | lessons |", "|---|---|---|---|"]
    for name, _, learn in rows:
        lines.append(
            f"| {name} | {learn.get('mean_at_k_before', 0):.3f} | {learn.get('mean_at_k_after', 0):.3f} | {learn.get('lessons', 0)} |"
        )
    text = "\n".join(lines)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation-diversity.md").write_text(text + "\n")
    (out / "ablation-diversity.json").write_text(
        json.dumps([{"condition": n, "learning": learn, "metrics": m} for n, m, learn in rows], indent=1)
    )
    for name, *_ in rows:  # per-item held-out rows, small, so the table can be recomputed
        run_dir = out / name.replace(" ", "-")
        for f in sorted(run_dir.glob("eval-epoch*.jsonl")):
            (out / f"{name.replace(' ', '-')}-{f.name}").write_text(f.read_text())


if __name__ == "__main__":
    main()
