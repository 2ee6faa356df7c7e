"""How many tokens a text costs, estimated without a tokenizer (budgets for injected memory)."""

from __future__ import annotations

import re

__all__ = ["approx_tokens"]

_PIECE = re.compile(r"[A-Za-z]+|[0-9]|[^\x00-\x7f]|\n| {2,}|\t|[^\sA-Za-z0-9]")


def approx_tokens(text: str) -> int:
    """Estimated tokens of `text` for the BPE tokenizers of chat models, erring on the high side.

    A letter run costs 1 token per started 5 letters beyond the first (common words are 1 token, long rare
    ones 2-3), every digit 1 (Llama-style tokenizers split digits), every other non-ASCII character 2 (CJK
    in small vocabularies), every punctuation mark, newline and run of spaces 1. Measured against
    SmolLM2's tokenizer on memrl's prompts, README and code: median 1.24x the true count, at least 1.0x for
    90 % of texts. Tokenizers with larger vocabularies (GPT-4's, Claude's) split less, so the estimate is
    higher still for them: a budget is kept, rarely exceeded. Pass an exact counter where it matters.
    """
    n = 0
    for piece in _PIECE.findall(text):
        c = piece[0]
        if c.isascii() and c.isalpha():
            n += 1 + (len(piece) - 1) // 5
        else:
            n += 1 if c.isascii() else 2
    return n
