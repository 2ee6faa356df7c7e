"""Teacher-forced token entropy under a local GGUF model with llama-cpp-python (the ``[local]`` extra).

For each group, the prompt is evaluated once; each of the G completions is then evaluated on top of it by
rewinding the context to the end of the prompt (``llm.n_tokens = len(prompt)``), which drops the previous
completion from the KV cache. With ``logits_all=True`` llama.cpp keeps one row of raw logits per evaluated
position in ``llm.scores``; row i is the distribution of token i + 1, so completion token j (0-based) is
scored by row ``len(prompt) − 1 + j``. A prompt that shares a prefix with the one evaluated last (a group's
next call, or the same system prompt) re-evaluates only the part after the shared prefix.

Prompts: chat messages are rendered with the GGUF's own chat template (``tokenizer.chat_template`` in its
metadata, through llama-cpp-python's Jinja formatter, generation prompt added), or ChatML when the file has
none; a plain string is scored exactly as given. Completions are tokenized on their own (no BOS, special
tokens as text) and appended, as a model that generated them after the generation prompt would have.

A scorer holds one llama.cpp context and is not thread-safe: use one per thread.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from memrl.entropy.scoring import Prompt, ScoredCompletion, entropy_and_logprob
from memrl.errors import LocalModelError
from memrl.llm.gguf import import_llama_cpp, resolve_gguf_path
from memrl.types import Message

__all__ = ["LlamaEntropyScorer", "chatml"]

log = logging.getLogger(__name__)


def chatml(messages: Sequence[Mapping[str, str]]) -> str:
    """ChatML rendering with the assistant generation prompt (the fallback when a GGUF has no template)."""
    body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


def _as_dicts(messages: Sequence[Message] | Sequence[dict[str, str]]) -> list[dict[str, str]]:
    out = []
    for m in messages:
        if isinstance(m, Message):
            out.append({"role": m.role, "content": m.content})
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return out


class LlamaEntropyScorer:
    """Scores (prompt, completion) pairs teacher-forced under a GGUF model, full vocabulary distributions.

    ``model_path`` defaults to the bundled SmolLM2-135M-Instruct. ``temperature`` scales the logits before
    both the entropies and the log-probabilities (1.0: the model's own distribution). An existing
    ``llama_cpp.Llama`` created with ``logits_all=True`` can be passed as ``llm`` instead of a path.
    ``n_threads`` sets llama.cpp's threads for single-token and batch evaluation alike (default: llama-cpp-
    python's, i.e. every core for batches); on a busy machine, fewer threads than cores keeps threads from
    spinning at barriers while descheduled.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        temperature: float = 1.0,
        llm: Any | None = None,
    ) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        if llm is None:
            llama_cpp = import_llama_cpp()
            path = resolve_gguf_path(model_path)
            log.debug("loading %s for entropy scoring (n_ctx=%d)", path, n_ctx)
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                logits_all=True,
                verbose=False,
            )
        elif not getattr(llm, "_logits_all", True):
            raise LocalModelError(
                "the Llama passed to LlamaEntropyScorer must be created with logits_all=True"
            )
        self.llm = llm
        self._formatter: Any | None = None

    @property
    def n_vocab(self) -> int:
        return int(self.llm.n_vocab())

    @property
    def n_ctx(self) -> int:
        return int(self.llm.n_ctx())

    # -- prompts and tokens -------------------------------------------------------------------------

    def format_prompt(self, prompt: Prompt) -> str:
        """The prompt as the text the model sees: strings unchanged, messages through the chat template."""
        if isinstance(prompt, str):
            return prompt
        messages = _as_dicts(prompt)
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            return chatml(messages)
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            model = self.llm._model  # token texts for the template's bos_token / eos_token variables
            bos, eos = self.llm.token_bos(), self.llm.token_eos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                bos_token=model.token_get_text(bos) if bos != -1 else "",
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                add_generation_prompt=True,
            )
        formatted = self._formatter(messages=cast(Any, messages))
        return str(formatted.prompt)

    def tokenize_prompt(self, prompt: Prompt) -> list[int]:
        """Prompt token ids. A chat template writes its own special tokens, so no BOS is added to it."""
        text = self.format_prompt(prompt)
        tokens = list(self.llm.tokenize(text.encode("utf-8"), add_bos=isinstance(prompt, str), special=True))
        if not tokens:
            raise ValueError("the prompt is empty and the model adds no BOS token: nothing predicts token 1")
        return tokens

    def tokenize_completion(self, completion: str) -> list[int]:
        return list(self.llm.tokenize(completion.encode("utf-8"), add_bos=False, special=False))

    def token_texts(self, token_ids: Sequence[int]) -> list[str]:
        """Text of each token; a UTF-8 character split over tokens is given to the token that completes it."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        texts = [decoder.decode(self.llm.detokenize([t], special=True)) for t in token_ids]
        if texts:
            texts[-1] += decoder.decode(b"", final=True)
        return texts

    # -- scoring ------------------------------------------------------------------------------------

    def _eval_prompt(self, prompt_tokens: Sequence[int]) -> None:
        """Make the context hold exactly ``prompt_tokens``, re-using the longest prefix already evaluated."""
        llm, p = self.llm, len(prompt_tokens)
        cached = np.asarray(llm.input_ids[: min(llm.n_tokens, p)])
        mismatch = np.flatnonzero(cached != np.asarray(prompt_tokens[: cached.size]))
        shared = int(mismatch[0]) if mismatch.size else int(cached.size)
        if shared == p:  # the last prompt row must come from this prompt: it is, when all p tokens match
            llm.n_tokens = p
            return
        llm.n_tokens = shared
        llm.eval(list(prompt_tokens[shared:]))

    def score_tokens(
        self, prompt_tokens: Sequence[int], completions: Sequence[Sequence[int]]
    ) -> list[ScoredCompletion]:
        """Score completions given as token ids after one prompt given as token ids."""
        p = len(prompt_tokens)
        if p == 0:
            raise ValueError("prompt_tokens is empty: nothing predicts the first completion token")
        longest = max((len(c) for c in completions), default=0)
        if p + longest > self.n_ctx:
            raise ValueError(
                f"prompt ({p} tokens) + longest completion ({longest}) exceed n_ctx={self.n_ctx}; "
                "create the scorer with a larger n_ctx"
            )
        self._eval_prompt(prompt_tokens)
        out = []
        for ids in completions:
            ids = list(ids)
            self.llm.n_tokens = p
            if ids:
                self.llm.eval(ids)
            logits = self.llm.scores[p - 1 : p - 1 + len(ids)]
            ent, lp = entropy_and_logprob(logits, ids, self.temperature)
            out.append(
                ScoredCompletion(
                    prompt_tokens=p,
                    token_ids=ids,
                    tokens=self.token_texts(ids),
                    entropies=ent.tolist(),
                    logprobs=lp.tolist(),
                )
            )
        return out

    def score_group(self, prompt: Prompt, completions: Sequence[str]) -> list[ScoredCompletion]:
        """Score the G completions of one prompt; the prompt is evaluated once for the whole group."""
        prompt_ids = self.tokenize_prompt(prompt)
        return self.score_tokens(prompt_ids, [self.tokenize_completion(c) for c in completions])

    def score(self, prompt: Prompt, completion: str) -> ScoredCompletion:
        """Score one completion after its prompt."""
        return self.score_group(prompt, [completion])[0]

    def score_groups(self, groups: Sequence[tuple[Prompt, Sequence[str]]]) -> list[list[ScoredCompletion]]:
        """Score several (prompt, completions) groups in turn."""
        return [self.score_group(prompt, completions) for prompt, completions in groups]
