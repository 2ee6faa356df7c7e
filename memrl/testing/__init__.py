"""Test doubles that users need too: a scripted LLM and scriptable OpenAI- and Anthropic-protocol HTTP servers."""

from memrl.testing.anthropic_server import FakeAnthropicServer
from memrl.testing.function_client import FunctionClient
from memrl.testing.scripted import ScriptedLLM
from memrl.testing.server import Action, FakeOpenAIServer

__all__ = ["Action", "FakeAnthropicServer", "FakeOpenAIServer", "FunctionClient", "ScriptedLLM"]
