"""Test doubles that users need too: a scripted LLM and a scriptable OpenAI-compatible HTTP server."""

from memrl.testing.function_client import FunctionClient
from memrl.testing.scripted import ScriptedLLM
from memrl.testing.server import Action, FakeOpenAIServer

__all__ = ["Action", "FakeOpenAIServer", "FunctionClient", "ScriptedLLM"]
