"""Soak: a Training-Free GRPO run through the litellm adapter against a fault-injecting local server.

Prints what was sent, what the server injected, and what the run kept: requests, faults by kind,
retries, rollouts lost (must be 0), duplicate charges (must be 0), ledger vs answers served.

    python bench/bench_soak.py                 # the default mix, about 2,400 requests
    python bench/bench_soak.py --scale 2       # twice the steps
    python bench/bench_soak.py --fault-rate 0.5  # every fault kind five times as often as by default
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from memrl.testing.faults import FaultMix, run_soak  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=1, help="multiply the number of steps per epoch")
    ap.add_argument("--fault-rate", type=float, default=None, help="total fault probability per request")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    mix = FaultMix()
    if args.fault_rate is not None:
        total = sum(mix.rates.values())
        mix = FaultMix(rates={k: v * args.fault_rate / total for k, v in mix.rates.items()})
    with tempfile.TemporaryDirectory() as tmp:
        r = run_soak(tmp, steps_per_epoch=6 * args.scale, mix=mix, seed=args.seed)
    print(f"{'requests sent':<28}{r.requests_sent:>8}")
    print(f"{'answers served (billed)':<28}{r.served:>8}")
    print(f"{'faults injected':<28}{sum(r.faults.values()):>8}")
    for kind, n in r.faults.items():
        print(f"  {kind:<26}{n:>8}")
    print(f"{'retries':<28}{r.retries:>8}")
    print(f"{'rollouts kept / expected':<28}{r.rollouts_kept:>4} / {r.rollouts_expected}")
    print(f"{'eval samples kept / expected':<28}{r.eval_samples_kept:>4} / {r.eval_samples_expected}")
    print(f"{'rollouts lost':<28}{r.rollouts_lost:>8}")
    print(f"{'duplicate charges':<28}{r.duplicate_charges:>8}")
    print(f"{'ledger calls - served':<28}{r.ledger_vs_served:>8}")
    print(f"{'late answers (timed out)':<28}{r.late_answers:>8}")
    print(f"{'content-filtered, kept':<28}{r.content_filtered:>8}")
    print(f"{'rejected learner ops':<28}{r.rejected_ops:>8}")
    print(f"{'lessons learned':<28}{r.lessons:>8}")
    print(f"{'seconds':<28}{r.seconds:>8}")
    problems = r.problems()
    print("OK" if not problems else "PROBLEMS: " + "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
