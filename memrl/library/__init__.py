"""The lesson library and everything that edits it: `Library` (ids, counters, versions, lineage), the
learner's proposals and the rules that turn them into edits (`edits`), the bounds and upkeep (`controls`),
and the one curation path both `memrl run` and `MemoryPolicy.learn()` call (`curate`)."""

from memrl.library.core import SCHEMA_VERSION, Library, LibraryDiff
from memrl.library.curate import CurateResult, curate, has_advantage
from memrl.library.edits import Edit, Op, Proposal, Rejection, apply_edits, reconcile

__all__ = [
    "SCHEMA_VERSION",
    "CurateResult",
    "Edit",
    "Library",
    "LibraryDiff",
    "Op",
    "Proposal",
    "Rejection",
    "apply_edits",
    "curate",
    "has_advantage",
    "reconcile",
]
