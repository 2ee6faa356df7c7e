"""Prompts are files: `prompts/<name>.yaml` holds Jinja templates (`system`, `user`), rendered with
StrictUndefined so a missing variable is an error, not an empty string. Shipped inside the wheel."""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from memrl.errors import ConfigError
from memrl.types import Message

__all__ = ["Prompt", "load_prompt", "prompt_names", "render", "PROMPT_DIRS"]

_HERE = Path(__file__).parent
#: Installed wheel: memrl/prompts; source checkout or editable install: the repository's prompts/.
PROMPT_DIRS = [_HERE / "prompts", _HERE.parent / "prompts"]

_env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


@lru_cache(maxsize=256)
def _compiled(template: str) -> jinja2.Template:
    """Each template source is compiled once (compiling costs ~30x rendering); a syntax error is not kept."""
    return _env.from_string(template)


def render(template: str, **variables: Any) -> str:
    try:
        return _compiled(template).render(**variables).strip()
    except jinja2.UndefinedError as e:
        raise ConfigError(f"prompt template uses an undefined variable: {e.message}") from None
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"prompt template has a syntax error at line {e.lineno}: {e.message}") from None


class Prompt:
    """A named prompt: optional system and user templates."""

    def __init__(self, name: str, system: str | None, user: str | None, meta: dict[str, Any]) -> None:
        self.name, self.system, self.user, self.meta = name, system, user, meta

    def messages(self, **variables: Any) -> list[Message]:
        out = []
        if self.system:
            out.append(Message.system(render(self.system, **variables)))
        if self.user:
            out.append(Message.user(render(self.user, **variables)))
        return out

    def text(self, part: str = "user", **variables: Any) -> str:
        tpl = getattr(self, part)
        if tpl is None:
            raise ConfigError(f"prompt {self.name!r} has no {part!r} part")
        return render(tpl, **variables)


def _find(name: str) -> Path:
    for d in PROMPT_DIRS:
        p = d / f"{name}.yaml"
        if p.is_file():
            return p
    raise ConfigError(f"no prompt named {name!r}; known prompts: {', '.join(prompt_names()) or 'none'}")


@cache
def load_prompt(name: str) -> Prompt:
    data = yaml.safe_load(_find(name).read_text(encoding="utf-8")) or {}
    return Prompt(name, data.pop("system", None), data.pop("user", None), data)


def prompt_names() -> list[str]:
    names: set[str] = set()
    for d in PROMPT_DIRS:
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)
