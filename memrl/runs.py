"""The run directory: resolved spec, per-item results, metrics, usage and checkpoints, written atomically.

Every whole-file write goes to a temporary file in the same folder and is renamed over the target, so a
kill never leaves a half-written file. Line logs (.jsonl) are appended one complete line per write and
read back tolerantly: a torn last line from a kill is dropped, never misread.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from memrl.errors import ConfigError
from memrl.spec import TaskSpec, spec_from_mapping

__all__ = ["RunDir", "atomic_write", "redact"]

#: Values shaped like a provider's API key: OpenAI sk-/sk-proj-, Anthropic sk-ant-, Google AIza, Groq gsk_,
#: Hugging Face hf_, xAI xai-, GitHub ghp_/github_pat_.
_KEY_SHAPED = re.compile(
    r"(?<![A-Za-z0-9_-])(sk-[A-Za-z0-9_-]{16,}|AIza[0-9A-Za-z_-]{30,}|gsk_[A-Za-z0-9]{20,}"
    r"|hf_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,}|ghp_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"
)
#: Environment variables whose value is a key whether or not the spec names them (litellm reads these).
_KEY_ENV_NAME = re.compile(r"(API_?KEY|ACCESS_KEY|_TOKEN|SECRET|PASSWORD)$", re.I)
REDACTED = "<redacted>"


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _secret_values(data: Any) -> set[str]:
    """The secrets a run might hold: the values of the environment variables the spec names (every
    `*_env` key, e.g. `model.api_key_env`) and of those named like a key (`OPENAI_API_KEY`, `HF_TOKEN`)."""
    names = {v for k, v in _walk(data) if k.endswith("_env") and isinstance(v, str)}
    names |= {n for n in os.environ if _KEY_ENV_NAME.search(n)}
    return {os.environ[n] for n in names if len(os.environ.get(n, "")) >= 8}


def _walk(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)
    else:
        yield key, value


def redact(value: Any, secrets: set[str] | None = None) -> Any:
    """Replace every string that holds a secret by `<redacted>`: a value of `secrets` (by default those of
    `_secret_values(value)`) or anything shaped like a provider key. Secrets are found by value, never by
    key name, so settings such as `eval.max_tokens` are kept."""
    secrets = _secret_values(value) if secrets is None else secrets
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str) and (_KEY_SHAPED.search(value) or any(s in value for s in secrets)):
        return REDACTED
    return value


class RunDir:
    """One run's folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._repaired: set[str] = set()
        self.created = False  # whether this process made the folder (see discard)

    # --------------------------------------------------------------------------- creation and lookup
    @classmethod
    def create(cls, spec: TaskSpec) -> RunDir:
        root = Path(spec.run.dir)
        if not root.is_absolute():
            root = Path.cwd() / root
        name = spec.run.name or f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        path = root / name
        if spec.run.name and (path / "spec.yaml").exists():
            raise ConfigError(
                f"run directory {path} already exists; resume it with --resume, or choose another run.name"
            )
        run = cls(path)
        run.make()
        run.write_spec(spec)
        return run

    def make(self) -> None:
        """Create the folder if it is missing; `created` says whether this call did."""
        if not self.path.exists():
            self.path.mkdir(parents=True)
            self.created = True

    def discard(self) -> bool:
        """Delete the folder if this process created it (a run stopped before it did anything)."""
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
            self.created = False
            return True
        return False

    @classmethod
    def latest(cls, spec: TaskSpec) -> RunDir:
        root = Path(spec.run.dir)
        if spec.run.name:
            path = root / spec.run.name
            if not (path / "spec.yaml").exists():
                raise ConfigError(f"nothing to resume: {path} holds no run")
            return cls(path)
        found = sorted(root.glob(f"{spec.name}-*/spec.yaml"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise ConfigError(f"nothing to resume: no run of task {spec.name!r} under {root}")
        return cls(found[-1].parent)

    def write_spec(self, spec: TaskSpec) -> None:
        data = redact(spec.model_dump(mode="json", exclude_none=True))
        data["_base_dir"] = str(spec.base_dir)
        atomic_write(self.path / "spec.yaml", yaml.safe_dump(data, sort_keys=False))

    def load_spec(self, overrides: list[str] | None = None) -> TaskSpec:
        from memrl.spec import apply_overrides

        path = self.path / "spec.yaml"
        if not path.is_file():
            raise ConfigError(f"{self.path} is not a memrl run directory (no spec.yaml)")
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        base = Path(raw.pop("_base_dir", "."))
        try:
            return spec_from_mapping(apply_overrides(raw, overrides or []), source=str(path), base_dir=base)
        except ConfigError as e:
            if repr(REDACTED) not in str(e):
                raise
            raise ConfigError(
                f"{e}\n{path}: an older memrl saved {REDACTED} in place of every setting named like a "
                "token or key; give each again with -c key.path=value (e.g. -c eval.max_tokens=256)"
            ) from None

    # --------------------------------------------------------------------------- files
    def remove_stale_temp(self) -> int:
        """Delete temporary files of writes a kill interrupted (the targets are intact); returns how many.
        Only for the one process that owns the run directory, before it writes."""
        stale = [p for p in self.path.rglob(".*.tmp") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, data: Any) -> None:
        atomic_write(self.file(name), json.dumps(data, indent=2, default=str) + "\n")

    def read_json(self, name: str, default: Any = None) -> Any:
        p = self.file(name)
        return json.loads(p.read_text()) if p.exists() else default

    def append_jsonl(self, name: str, record: dict[str, Any] | str) -> None:
        line = (record if isinstance(record, str) else json.dumps(record, default=str)) + "\n"
        if name not in self._repaired:
            self._drop_torn_tail(self.file(name))
            self._repaired.add(name)
        with self.file(name).open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    @staticmethod
    def _drop_torn_tail(p: Path) -> None:
        """Cut a last line left incomplete by a kill, so the next record starts on a line of its own."""
        if not p.exists() or p.stat().st_size == 0:
            return
        data = p.read_bytes()
        if data.endswith(b"\n"):
            return
        with p.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)

    def read_jsonl(self, name: str) -> Iterator[dict[str, Any]]:
        p = self.file(name)
        if not p.exists():
            return
        with p.open(encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    return  # torn by a kill: the record was never completed
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue
