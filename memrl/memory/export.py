"""Export and import memory as versioned JSON.

An export holds records, not vectors: importing re-embeds every record with the target memory's embedder, which
is also how a memory moves to another embedding model. Files carry `schema_version`; older versions are migrated
on load, newer ones are refused with a clear error.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from memrl.errors import ConfigError, DataError
from memrl.memory.records import RECORD_TYPES
from memrl.memory.store import Memory, RecordCollection

__all__ = ["SCHEMA_VERSION", "export_store", "import_store", "export_memory", "import_memory", "load_export"]

#: Version of the export format written now.
SCHEMA_VERSION = 1
FORMAT = "memrl-memory"

#: from-version -> function upgrading a document by one version (none yet: version 1 is the first).
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def export_store(store: RecordCollection[Any]) -> dict[str, Any]:
    """One store as a JSON-ready document."""
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "kind": store.record_type.kind,
        "embedder": store.embedder.name,
        "exported_at": time.time(),
        "records": [r.model_dump(mode="json") for r in store.all()],
    }


def export_memory(memory: Memory, path: str | Path | None = None) -> dict[str, Any]:
    """Every store of `memory` as one document; written atomically to `path` when given."""
    doc = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "namespace": memory.namespace,
        "embedder": memory.embedder.name,
        "exported_at": time.time(),
        "stores": {kind: export_store(s)["records"] for kind, s in memory.stores().items()},
    }
    if path is not None:
        _write_atomic(Path(path), json.dumps(doc, ensure_ascii=False, indent=1))
    return doc


def load_export(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Read an export (file or dict), check its format and migrate it to the current schema version."""
    if isinstance(source, dict):
        doc = source
    else:
        try:
            doc = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"cannot read memory export {source}: {e}") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataError(f"not a memrl memory export (expected 'format': {FORMAT!r})")
    version = doc.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise DataError(f"memory export has no valid schema_version (got {version!r})")
    if version > SCHEMA_VERSION:
        raise DataError(
            f"memory export has schema_version {version}, newer than this memrl reads ({SCHEMA_VERSION}): upgrade memrl"
        )
    while version < SCHEMA_VERSION:
        doc = _MIGRATIONS[version](doc)
        version = doc["schema_version"]
    return doc


def import_store(
    store: RecordCollection[Any],
    records: list[dict[str, Any]],
    *,
    mode: Literal["upsert", "replace"] = "upsert",
) -> int:
    """Validate and write `records` into `store` (re-embedding them). `replace` first empties the store."""
    parsed = []
    for i, raw in enumerate(records):
        try:
            parsed.append(store.record_type.model_validate(raw))
        except ValidationError as e:
            raise DataError(f"{store.record_type.kind} record #{i} in the export is invalid: {e}") from e
    if mode == "replace":
        store.delete([r.id for r in store.all()])
    elif mode != "upsert":
        raise ConfigError(f"import mode must be 'upsert' or 'replace', got {mode!r}")
    store.upsert(parsed)
    return len(parsed)


def import_memory(
    memory: Memory, source: str | Path | dict[str, Any], *, mode: Literal["upsert", "replace"] = "upsert"
) -> dict[str, int]:
    """Load an export (whole memory, or one store's) into `memory`; returns records written per kind."""
    doc = load_export(source)
    stores = memory.stores()
    if "stores" in doc:
        by_kind = doc["stores"]
    elif "kind" in doc:
        by_kind = {doc["kind"]: doc.get("records", [])}
    else:
        raise DataError("memory export has neither 'stores' nor 'kind' + 'records'")
    unknown = sorted(set(by_kind) - set(RECORD_TYPES))
    if unknown:
        raise DataError(f"memory export has unknown store kinds {unknown}; known: {sorted(RECORD_TYPES)}")
    return {kind: import_store(stores[kind], records, mode=mode) for kind, records in by_kind.items()}


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
