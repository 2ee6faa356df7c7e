"""The task layer: datasets (local files and packaged real sets) and verifiers."""

from memrl.tasks.base import Split, Verifier
from memrl.tasks.datasets import load_items, load_split, split_items
from memrl.tasks.sandbox import SandboxResult, arun_python, run_python
from memrl.tasks.verifiers import build_verifier

__all__ = [
    "Split",
    "Verifier",
    "load_items",
    "load_split",
    "split_items",
    "build_verifier",
    "SandboxResult",
    "run_python",
    "arun_python",
]
