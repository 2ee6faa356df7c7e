"""The memory layer: experience library, case, subtask and tool memory on chromadb, with offline embeddings.

    from memrl.memory import open_memory, LessonRecord
    mem = open_memory("runs/x/memory")                 # or "http://127.0.0.1:8000", or ":memory:"
    mem.experience.add([LessonRecord(text="Check units before answering.")])
    hits = mem.experience.query("unit conversion", k=3, where={"status": "active"})

chromadb is imported only when a chroma location is opened.
"""

from memrl.memory.base import (
    CaseStore,
    Embedder,
    ExperienceStore,
    Hit,
    IndexSettings,
    RecordStore,
    SubtaskStore,
    ToolStore,
    VectorBackend,
    VectorIndex,
    Where,
)
from memrl.memory.embed import LiteLLMEmbedder, MiniLMEmbedder, make_embedder
from memrl.memory.export import export_memory, export_store, import_memory, import_store, load_export
from memrl.memory.records import CaseRecord, LessonRecord, MemoryRecord, SubtaskRecord, ToolCallRecord
from memrl.memory.retrieve import mmr, retrieve
from memrl.memory.stats import MemoryStats, StoreStats, memory_stats
from memrl.memory.store import (
    CaseMemory,
    ExperienceLibrary,
    Memory,
    RecordCollection,
    SubtaskMemory,
    ToolMemory,
    open_backend,
    open_memory,
)
from memrl.memory.testing import HashEmbedder, InMemoryBackend

__all__ = [
    "CaseMemory",
    "CaseRecord",
    "CaseStore",
    "Embedder",
    "ExperienceLibrary",
    "ExperienceStore",
    "HashEmbedder",
    "Hit",
    "InMemoryBackend",
    "IndexSettings",
    "LessonRecord",
    "LiteLLMEmbedder",
    "Memory",
    "MemoryRecord",
    "MemoryStats",
    "MiniLMEmbedder",
    "RecordCollection",
    "RecordStore",
    "StoreStats",
    "SubtaskMemory",
    "SubtaskRecord",
    "SubtaskStore",
    "ToolCallRecord",
    "ToolMemory",
    "ToolStore",
    "VectorBackend",
    "VectorIndex",
    "Where",
    "export_memory",
    "export_store",
    "import_memory",
    "import_store",
    "load_export",
    "make_embedder",
    "memory_stats",
    "mmr",
    "open_backend",
    "open_memory",
    "retrieve",
]
