"""The run directory: resolved spec, per-item results, metrics, usage and checkpoints, written atomically.

Every whole-file write goes to a temporary file in the same folder and is renamed over the target, so a
kill never leaves a half-written file. Line logs (.jsonl) are appended one complete line per write and
read back tolerantly: a torn last line from a kill is dropped, never misread.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from memrl.errors import ConfigError
from memrl.spec import TaskSpec, spec_from_mapping

__all__ = ["RunDir", "atomic_write", "redact"]

_SECRET = re.compile(r"(api[_-]?key|secret|token|password|authorization)", re.I)


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


def redact(value: Any) -> Any:
    """Drop values under secret-looking keys (api_key_env names a variable and is kept)."""
    if isinstance(value, dict):
        return {
            k: ("<redacted>" if _SECRET.search(str(k)) and not str(k).endswith("_env") else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class RunDir:
    """One run's folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._repaired: set[str] = set()

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
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        run.write_spec(spec)
        return run

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

        raw = yaml.safe_load((self.path / "spec.yaml").read_text())
        base = Path(raw.pop("_base_dir", "."))
        return spec_from_mapping(
            apply_overrides(raw, overrides or []), source=str(self.path / "spec.yaml"), base_dir=base
        )

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
