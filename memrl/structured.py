"""Structured answers from any model: ask with a JSON schema in the provider's own constrained form,
validate with pydantic, then repair → retry → a logged skip. A malformed answer never crashes a run."""

from __future__ import annotations

import json
import logging
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from memrl.llm.base import LLM, Request
from memrl.types import Message

__all__ = ["ask_structured", "repair_json"]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def repair_json(text: str) -> Any | None:
    """Parse JSON out of a model's text: as is, inside a code fence, or from the first { to the last }."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for c in candidates:
        try:
            return json.loads(c)
        except (json.JSONDecodeError, ValueError):
            continue
    return None


async def ask_structured(
    llm: LLM,
    messages: list[Message],
    model: type[M],
    *,
    schema: dict[str, Any] | None = None,
    phase: str,
    salt: str,
    temperature: float = 0.3,
    max_tokens: int = 512,
    attempts: int = 2,
) -> M | None:
    """The validated answer, or None (logged) when every attempt was unusable."""
    schema = schema or model.model_json_schema()
    last = ""
    for attempt in range(attempts):
        req = Request.of(messages, temperature=temperature, max_tokens=max_tokens, json_schema=schema)
        text = (await llm.complete(req, phase=phase, salt=f"{salt}#try{attempt}"))[0].text
        data = repair_json(text)
        if data is None:
            last = "not JSON"
        else:
            try:
                return model.model_validate(data)
            except ValidationError as e:
                last = f"schema mismatch: {e.errors()[0]['msg']} at {e.errors()[0]['loc']}"
        log.info("structured answer unusable (%s), attempt %d/%d", last, attempt + 1, attempts)
    log.warning("skipped a %s answer after %d attempts: %s", model.__name__, attempts, last)
    return None
