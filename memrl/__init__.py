"""memrl: make LLM agents better at a task without touching weights."""

from memrl.errors import BudgetExceeded, ConfigError, MemrlError, ProviderError
from memrl.policy import MemoryPolicy
from memrl.spec import TaskSpec, load_spec
from memrl.types import Completion, Item, Message, Rollout, Usage, Verdict

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
