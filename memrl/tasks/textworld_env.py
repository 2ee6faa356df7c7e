"""TextWorld cooking games (the `textworld` extra: `pip install 'memrl[textworld]'`), generated offline.

`data.source: textworld:cooking` with `data.params` (see `CookingParams`) gives a train split of games drawn
from the cooking challenge's *train* foods and a test split from its *test* (or *valid*) foods, so held-out
games hold ingredients and preparations never seen in training. Games are generated once into a cache folder
(`cache_dir`, default `~/.cache/memrl/textworld`) and reused; a game's file name encodes its settings and seed.

A `TextWorldGame` plays one game: the agent acts through the `act` tool, whose argument is restricted (by a
JSON schema `enum`) to the commands the game admits at that moment. The reward is the game's score over its
maximum score, 1.0 when the game is won.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from memrl.errors import ConfigError, DataError
from memrl.spec import DataSpec
from memrl.tasks.base import Split
from memrl.tools.base import ToolResult
from memrl.types import Item

__all__ = ["CookingParams", "cooking_games", "textworld_split", "TextWorldGame", "ActTool", "clean_feedback"]

log = logging.getLogger(__name__)

_INSTALL = "TextWorld games need the textworld package: pip install 'memrl[textworld]' (textworld==1.7.0)"
_SPLIT_BASE = {"train": 100_000, "valid": 200_000, "test": 300_000}


class CookingParams(BaseModel):
    """`data.params` of `textworld:cooking`: how many games per split and the challenge's skills."""

    model_config = ConfigDict(extra="forbid")

    train: int = Field(default=20, ge=0, le=999, description="Training games (train foods).")
    test: int = Field(default=20, ge=1, le=999, description="Held-out games (test or valid foods).")
    eval_split: Literal["test", "valid"] = "test"
    recipe: int = Field(default=1, ge=1, le=5, description="Ingredients in the recipe.")
    take: int = Field(default=1, ge=0, le=5, description="Ingredients to find (at most `recipe`).")
    go: Literal[1, 6, 9, 12] = 1
    open: bool = False
    cook: bool = False
    cut: bool = False
    drop: bool = False
    max_moves: int = Field(default=50, ge=1, description="The game ends (lost) after this many commands.")
    cache_dir: str = "~/.cache/memrl/textworld"


def _textworld() -> Any:
    try:
        import textworld
    except ImportError:
        raise ConfigError(_INSTALL) from None
    return textworld


def _skills(p: CookingParams) -> str:
    flags = "".join(c for c, on in (("o", p.open), ("k", p.cook), ("c", p.cut), ("d", p.drop)) if on)
    return f"r{p.recipe}t{p.take}g{p.go}{flags}"


def _generate(p: CookingParams, split: str, seed: int, dest: Path) -> None:
    tw = _textworld()
    from textworld.challenges.tw_cooking import cooking
    from textworld.generator import compile_game

    settings = {"recipe": p.recipe, "take": p.take, "go": p.go, "open": p.open, "cook": p.cook,
                "cut": p.cut, "drop": p.drop, "recipe_seed": seed, "split": split}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="memrl-tw-", dir=dest.parent) as tmp:
        opts = tw.GameOptions()
        opts.seeds = seed
        opts.path = str(Path(tmp) / dest.name)
        opts.file_ext = ".z8"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            game = cooking.make(settings, opts)
            compile_game(game, opts)
        # the .json (game facts, needed for admissible commands) first, the .z8 last: its presence marks done
        for ext in (".json", ".z8"):
            os.replace(Path(tmp) / f"{dest.stem}{ext}", dest.with_suffix(ext))


def cooking_games(p: CookingParams, split: str, n: int, seed: int = 0) -> list[Path]:
    """Paths of `n` cooking games of `split`, generated into the cache folder where missing."""
    if p.take > p.recipe:
        raise ConfigError(f"data.params.take ({p.take}) must not exceed data.params.recipe ({p.recipe})")
    folder = Path(p.cache_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        game_seed = _SPLIT_BASE[split] + seed * 1000 + i
        path = folder / f"cooking-{split}-{_skills(p)}-s{game_seed}.z8"
        if not (path.exists() and path.with_suffix(".json").exists()):
            log.info("generating TextWorld game %s", path.name)
            _generate(p, split, game_seed, path)
        paths.append(path)
    return paths


def textworld_split(data: DataSpec) -> Split:
    """The train/test split of a `textworld:cooking` data section."""
    kind = data.source.strip().partition(":")[2]
    if kind != "cooking":
        raise DataError(f"data.source {data.source!r}: the TextWorld source is 'textworld:cooking'")
    try:
        p = CookingParams.model_validate(data.params)
    except Exception as e:
        raise ConfigError(f"data.params of textworld:cooking: {e}") from None

    def items(split: str, n: int) -> list[Item]:
        return [
            Item(
                id=path.stem, question="", meta={"game": str(path), "split": split, "max_moves": p.max_moves}
            )
            for path in cooking_games(p, split, n, data.seed)
        ]

    return Split(train=items("train", p.train), test=items(p.eval_split, p.test))


_PROMPT = re.compile(r"^\s*>")


def clean_feedback(text: str) -> str:
    """Game text without the title banner, the command prompt and its status line."""
    keep = []
    for line in text.splitlines():
        s = line.strip()
        if not s or _PROMPT.match(line):
            continue
        letters = sum(c.isalpha() for c in s)
        if letters < 0.6 * len(s.replace(" ", "")):
            continue  # ASCII-art banner
        keep.append(s)
    return " ".join(keep)


class TextWorldGame:
    """One game in play. `step` never raises for a command the game rejects: the game says so in text."""

    def __init__(self, path: str | Path, *, max_moves: int = 50) -> None:
        tw = _textworld()
        infos = tw.EnvInfos(admissible_commands=True, won=True, lost=True, max_score=True, score=True,
                            moves=True, objective=True)  # fmt: skip
        self.path, self.max_moves = Path(path), max_moves
        with warnings.catch_warnings():  # jericho: "not fully supported" (TextWorld keeps the score itself)
            warnings.simplefilter("ignore")
            self._env = tw.start(str(self.path), request_infos=infos)
        self._state = self._env.reset()
        self.start_text = clean_feedback(self._state.feedback)
        self.last_text = ""  # the opening scene is the task; observations are what happened since
        self.objective = str(self._state.objective or "").strip()

    @property
    def score(self) -> float:
        return float(self._state.score or 0)

    @property
    def max_score(self) -> float:
        return float(self._state.max_score or 1)

    @property
    def won(self) -> bool:
        return bool(self._state.won)

    @property
    def lost(self) -> bool:
        return bool(self._state.lost) or (self.moves >= self.max_moves and not self.won)

    @property
    def moves(self) -> int:
        return int(self._state.moves or 0)

    @property
    def done(self) -> bool:
        return self.won or self.lost

    def admissible(self) -> list[str]:
        return sorted(set(self._state.admissible_commands or [])) or ["look"]

    def step(self, command: str) -> ToolResult:
        if self.done:
            return ToolResult(ok=False, error="the game is over", done=True)
        before = self.score
        self._state, _, _ = self._env.step(command)
        text = clean_feedback(self._state.feedback)
        gained = self.score - before
        note = f" [score +{gained:g}, now {self.score:g}/{self.max_score:g}]" if gained else ""
        self.last_text = text
        return ToolResult(ok=True, output=f"{text}{note}", done=self.done)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._env.close()


class ActTool:
    """The game as a tool: `act(command)`, the command restricted to those the game admits now."""

    name = "act"

    def __init__(self, game: TextWorldGame, *, list_limit: int = 40) -> None:
        self.game, self._commands = game, game.admissible()[:list_limit]
        self.description = "Send one command to the game. Commands now: " + "; ".join(self._commands)

    def args_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"command": {"type": "string", "enum": self._commands}},
            "required": ["command"],
        }

    async def call(self, args: dict[str, Any]) -> ToolResult:
        command = args.get("command")
        if not isinstance(command, str) or command not in self._commands:
            return ToolResult(ok=False, error=f"{command!r} is not an admissible command now")
        return self.game.step(command)


def remove_cache(p: CookingParams) -> None:
    """Delete the generated games of these settings (tests)."""
    shutil.rmtree(Path(p.cache_dir).expanduser(), ignore_errors=True)
