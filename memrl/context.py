"""What an algorithm gets from a run: the spec, the run directory, the policy LLM and the learner, the data,
the verifier, the embedder, and where to report progress. Built once by `memrl.runner`; it sits below the
algorithms, which import it, so nothing here imports `memrl.algos`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from memrl.llm.managed import ManagedLLM
from memrl.runs import RunDir
from memrl.spec import TaskSpec
from memrl.tasks.base import Split, Verifier

if TYPE_CHECKING:
    from pathlib import Path

    from memrl.llm.base import LLM
    from memrl.memory.base import Embedder, MemoryStores

__all__ = ["RunContext", "Progress", "NoProgress"]


class Progress(Protocol):
    """Where long work reports how far it got (the CLI draws bars; the library default is silent)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, label: str, n: int = 1) -> None: ...


class NoProgress:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, label: str, n: int = 1) -> None:
        pass


class RunContext:
    """The run's parts. `learner` is the model that writes lessons (`tfgrpo.learner`, else the policy model),
    sharing the run's cache and ledger; `embedder` is the run's embedder (`diversity.embedder`), made on
    first use so runs that never compare texts load none."""

    def __init__(
        self,
        spec: TaskSpec,
        run: RunDir,
        llm: ManagedLLM,
        split: Split,
        verifier: Verifier,
        *,
        learner: LLM | None = None,
    ) -> None:
        self.spec, self.run, self.llm, self.split, self.verifier = spec, run, llm, split, verifier
        self.progress: Progress = NoProgress()
        self._learner = learner
        self._embedder: Embedder | None = None

    @property
    def learner(self) -> LLM:
        if self._learner is None:
            cfg = self.spec.tfgrpo
            if cfg is not None and cfg.learner is not None:
                from memrl.llm.factory import build_llm

                self._learner = build_llm(cfg.learner, cache=self.llm.cache, ledger=self.llm.ledger)
            else:
                self._learner = self.llm
        return self._learner

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from memrl.memory.embed import make_embedder

            self._embedder = make_embedder(self.spec.diversity.embedder)
        return self._embedder

    def open_memory(
        self, location: str | Path, *, namespace: str, embedder: str | None = None
    ) -> MemoryStores:
        """The memory stores at a directory or chroma server URL (created where needed), with `embedder`
        (a name; the run's embedder by default). Algorithms get stores through here, never a backend."""
        from memrl.memory.store import open_memory

        return open_memory(location, embedder=embedder or self.embedder, namespace=namespace)

    def save_usage(self) -> None:
        self.run.write_json("usage.json", self.llm.ledger.snapshot())
