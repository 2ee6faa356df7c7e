"""memrl: make LLM agents better at a task without touching weights."""

from typing import TYPE_CHECKING, Any

from memrl.errors import BudgetExceeded, ConfigError, MemrlError, ProviderError
from memrl.spec import TaskSpec, load_spec
from memrl.types import Completion, Item, Message, Rollout, Usage, Verdict

if TYPE_CHECKING:
    from memrl.policy import MemoryPolicy

__version__ = "0.1.0"

__all__ = [
    "BudgetExceeded",
    "Completion",
    "ConfigError",
    "Item",
    "MemrlError",
    "MemoryPolicy",
    "Message",
    "ProviderError",
    "Rollout",
    "TaskSpec",
    "Usage",
    "Verdict",
    "__version__",
    "load_spec",
]


def __getattr__(name: str) -> Any:
    # MemoryPolicy pulls in the learner and memory layers: imported on first use, so `import memrl` stays fast.
    if name == "MemoryPolicy":
        from memrl.policy import MemoryPolicy

        return MemoryPolicy
    raise AttributeError(f"module 'memrl' has no attribute {name!r}")
