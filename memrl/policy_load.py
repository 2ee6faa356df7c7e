"""Where a `MemoryPolicy` comes from (`MemoryPolicy.load`): a run directory — its library, the placement,
diversity and tfgrpo settings it learned with, the worked cases it showed and its trusted verified skills —
a library export, a chroma directory, a chroma server URL or `:memory:`. A run is deployed as it was
evaluated."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memrl.cases import CaseRetriever
from memrl.errors import ConfigError
from memrl.library import Library
from memrl.memory.store import Memory
from memrl.spec import TFGRPOSpec

if TYPE_CHECKING:
    from memrl.policy import MemoryPolicy

__all__ = ["load_policy"]

log = logging.getLogger(__name__)


def load_policy(
    cls: type[MemoryPolicy], source: str | Path | Library | Memory, *, embedder: Any = None, **options: Any
) -> MemoryPolicy:
    """See `MemoryPolicy.load`."""
    from memrl.memory.store import open_memory

    if isinstance(source, Library):
        return cls(source, **options)
    if isinstance(source, Memory):
        return cls(None, memory=source, **options)
    loc = str(source)
    if loc == ":memory:" or re.match(r"https?://", loc):
        return cls(None, memory=open_memory(loc, embedder=embedder), **options)
    path = Path(source).expanduser()
    if path.is_file():
        return cls(Library.from_export(path), **options)
    if not path.is_dir():
        raise ConfigError(
            f"no memory at {str(path)!r}: expected a run directory, a library export "
            "(.json), a chroma directory or a chroma server URL"
        )
    if (path / "library.json").exists() or (path / "library").is_dir() or (path / "spec.yaml").exists():
        if (path / "spec.yaml").exists():
            options = _run_options(path) | options
        if (path / "memory").is_dir() and "memory" not in options:
            options["memory"] = open_memory(path / "memory", embedder=embedder)
        if (path / "skills" / "skills.json").is_file() and "skills" not in options:
            options["skills"] = path / "skills" / "skills.json"  # only its trusted skills are deployed
        return cls(Library.load(path), **options)
    if (path / "chroma.sqlite3").exists():
        return cls(None, memory=open_memory(path, embedder=embedder), **options)
    raise ConfigError(
        f"{path} holds no library.json, library/, spec.yaml or chroma.sqlite3: not a memrl "
        "run directory or memory"
    )


def _run_options(path: Path) -> dict[str, Any]:
    """The run's memory placement, diversity and tfgrpo settings, so deployment selects and places memory as
    learning did. When the whole spec does not validate (an older memrl wrote `<redacted>` over every `*_tokens` setting), the two
    sections are read on their own, without the hidden values."""
    import yaml

    from memrl.runs import REDACTED, RunDir
    from memrl.spec import PromptSpec

    try:
        spec = RunDir(path).load_spec()
        found: dict[str, Any] = {"placement": spec.prompt.memory_placement, "diversity": spec.diversity}
        return found | ({"tfgrpo": spec.tfgrpo} if spec.tfgrpo else {}) | _run_cases(path, spec)
    except (ConfigError, OSError, ValueError) as e:
        whole = e
    try:
        raw = yaml.safe_load((path / "spec.yaml").read_text(encoding="utf-8"))
        sections = {k: raw.get(k) or {} for k in ("prompt", "tfgrpo")} if isinstance(raw, dict) else {}
        kept = {k: {f: v for f, v in sec.items() if v != REDACTED} for k, sec in sections.items()}
        options: dict[str, Any] = {"placement": PromptSpec.model_validate(kept["prompt"]).memory_placement}
        if kept["tfgrpo"] or raw.get("algorithm") == "tfgrpo":
            options["tfgrpo"] = TFGRPOSpec.model_validate(kept["tfgrpo"])
    except (OSError, ValueError, KeyError, AttributeError, yaml.YAMLError) as e:
        log.warning("could not read %s/spec.yaml (%s); using default placement and settings", path, e)
        return {}
    log.warning(
        "%s/spec.yaml does not validate (%s); its placement and tfgrpo settings were read alone", path, whole
    )
    return options


def _run_cases(path: Path, spec: Any) -> dict[str, Any]:
    """A Training-Free GRPO run that learned worked cases deploys them as it showed them: its case memory
    (namespace `tfgrpo`), its retrieval settings and learned utility, its renderer and its memory budget."""
    from memrl.algos.tfgrpo.cases import NAMESPACE
    from memrl.algos.tfgrpo.learning import CASES_BUDGET, NO_BUDGET
    from memrl.inject import render_solved
    from memrl.memory.store import open_memory

    cfg = spec.tfgrpo
    if cfg is None:
        return {}
    uses_cases = cfg.experiences in ("cases", "both") and (path / "memory").is_dir()
    options: dict[str, Any] = {
        "token_budget": cfg.memory_tokens or (CASES_BUDGET if uses_cases else NO_BUDGET)
    }
    if uses_cases:
        memory = open_memory(path / "memory", embedder=spec.diversity.embedder, namespace=NAMESPACE)
        q_path = path / "cases_q.json"
        options |= {
            "cases": CaseRetriever(memory.cases, cfg.cases, q_path=q_path if q_path.exists() else None,
                                   exclude_same_task=False),
            "max_cases": cfg.cases.k, "case_render": render_solved, "memory": memory,
        }  # fmt: skip
    return options
