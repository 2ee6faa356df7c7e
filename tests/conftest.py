from __future__ import annotations

import importlib.util
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _local_model_available() -> bool:
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    try:
        from memrl.llm.gguf import default_gguf_path

        default_gguf_path()
    except Exception:
        return False
    return True


LOCAL = _local_model_available()
needs_local = pytest.mark.skipif(not LOCAL, reason="the embedded local model is not installed (memrl[local])")


@pytest.fixture(scope="session")
def local_server():
    """One embedded llama.cpp server for the whole test session."""
    if not LOCAL:
        pytest.skip("the embedded local model is not installed")
    from memrl.llm.local import shared_server

    return shared_server("local")
