"""The Memento planner–executor agent (arXiv 2508.16153): the run loop (`loop`), one episode (`agent`), the
planner (`plan`), the executor (`exec`) and the environments it acts in (`env`). Case retrieval is
`memrl.cases`."""

from memrl.algos.memento.loop import run_memento, summarise, wilson

__all__ = ["run_memento", "summarise", "wilson"]
