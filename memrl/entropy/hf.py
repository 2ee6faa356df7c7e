"""The transformers backend of teacher-forced scoring: the same GGUF (or any local HF model folder) loaded
by transformers on the CPU. Optional: needs torch, transformers, gguf and accelerate; llama.cpp is the default.

It implements the same `TokenScorer` Protocol as `LlamaEntropyScorer`, so the two can be compared on the same
texts (they agree within 0.15 nats/token; see tests/test_entropy_backends.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memrl.entropy.scoring import ScoredCompletion, entropy_and_logprob
from memrl.errors import LocalModelError
from memrl.llm.gguf import resolve_gguf_path
from memrl.types import Message

__all__ = ["TransformersEntropyScorer"]


class TransformersEntropyScorer:
    """Scores (prompt, completion) pairs with a transformers causal LM, full distributions, float32 on CPU."""

    def __init__(self, model_path: str | Path | None = None, *, temperature: float = 1.0) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            raise LocalModelError(
                "the transformers scoring backend needs torch, transformers, gguf and accelerate: "
                "pip install torch==2.13.0 transformers gguf accelerate"
            ) from e
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self._torch = torch
        path = (
            Path(model_path)
            if model_path is not None and Path(model_path).is_dir()
            else resolve_gguf_path(model_path)
        )
        kw: dict[str, Any] = {} if path.is_dir() else {"gguf_file": path.name}
        folder = path if path.is_dir() else path.parent
        self.tokenizer = AutoTokenizer.from_pretrained(folder, **kw)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kw)
        self.model.eval()

    def format_prompt(self, prompt: str | Sequence[Message] | Sequence[dict[str, str]]) -> str:
        if isinstance(prompt, str):
            return prompt
        msgs = [m.model_dump() if isinstance(m, Message) else dict(m) for m in prompt]
        return str(self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))

    def score_group(self, prompt: Any, completions: Sequence[str]) -> list[ScoredCompletion]:
        text = self.format_prompt(prompt)
        prompt_ids = list(self.tokenizer(text, add_special_tokens=isinstance(prompt, str))["input_ids"])
        if isinstance(prompt, str) and not prompt_ids:
            raise ValueError("the prompt is empty: nothing predicts the first completion token")
        out = []
        for completion in completions:
            ids = list(self.tokenizer(completion, add_special_tokens=False)["input_ids"])
            p = len(prompt_ids)
            with self._torch.no_grad():
                logits = self.model(self._torch.tensor([prompt_ids + ids])).logits[0]
            rows = logits[p - 1 : p - 1 + len(ids)].double().numpy()
            ent, lp = entropy_and_logprob(rows, ids, self.temperature)
            out.append(
                ScoredCompletion(
                    prompt_tokens=p,
                    token_ids=ids,
                    tokens=[self.tokenizer.decode([t]) for t in ids],
                    entropies=ent.tolist(),
                    logprobs=lp.tolist(),
                )
            )
        return out
