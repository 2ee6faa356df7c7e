"""Benchmark of the memory layer: retrieval latency against numpy brute force, embedding throughput against
onnxruntime called directly. Prints figures and ratios side by side.

    python bench/bench_memory.py            # 1k, 10k, 100k items (a few minutes on 2 cores)
    python bench/bench_memory.py --smoke    # tiny and fast, for CI

Retrieval uses random unit vectors (dim 384, the default embedder's), because embedding 100k texts would take
minutes: a lookup "embedder" maps each item's and each query's text to its precomputed vector, so the timed path
is memrl's whole `store.query(text, k)` (chroma HNSW search on an embedded PersistentClient + record parsing),
next to a plain chromadb `collection.query` for the same fields (documents, metadatas, distances) and an exact numpy search (matrix product + argpartition) over the
same vectors in the same process.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from memrl.memory import LessonRecord, open_memory  # noqa: E402
from memrl.memory.embed import MiniLMEmbedder, minilm_files  # noqa: E402

DIM = 384


class LookupEmbedder:
    """Maps known texts to precomputed vectors: lets the benchmark time the store, not a model."""

    name = "bench-lookup"
    dim = DIM

    def __init__(self, vectors: np.ndarray, texts: list[str]) -> None:
        self.vectors, self.row = vectors, {t: i for i, t in enumerate(texts)}

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self.vectors[[self.row[t] for t in texts]].tolist()


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _pct(samples: list[float]) -> tuple[float, float]:
    a = np.array(samples) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def bench_retrieval(n: int, n_queries: int, k: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    items, queries = _unit(rng, n), _unit(rng, n_queries)
    names = [f"item {i}" for i in range(n)] + [f"query {i}" for i in range(n_queries)]
    emb = LookupEmbedder(np.concatenate([items, queries]), names)
    with tempfile.TemporaryDirectory() as tmp:
        lib = open_memory(tmp, embedder=emb).experience
        t0 = time.perf_counter()
        step = 5000
        for s in range(0, n, step):
            lib.upsert([LessonRecord(id=f"i{i}", text=f"item {i}") for i in range(s, min(n, s + step))])
        insert_s = time.perf_counter() - t0
        raw = lib.index._col  # the plain chromadb collection under the store
        result: dict[str, list] = {}

        def run_ours(qi: int) -> list[str]:
            return [h.record.id for h in lib.query(f"query {qi}", k=k)]

        def run_chroma(qi: int) -> list[str]:
            inc = ["documents", "metadatas", "distances"]
            return raw.query(query_embeddings=[queries[qi]], n_results=k, include=inc)["ids"][0]

        def run_numpy(qi: int) -> list[str]:
            sims = items @ queries[qi]
            top = np.argpartition(-sims, k)[:k]
            return [f"i{j}" for j in top[np.argsort(-sims[top])]]

        methods = {"ours": run_ours, "chroma": run_chroma, "numpy": run_numpy}
        times: dict[str, list[float]] = {m: [] for m in methods}
        recall = []
        for qi in range(n_queries):
            # rotate the order: the numpy scan evicts the CPU caches, so whoever runs right after it starts cold
            order = list(methods)[qi % 3 :] + list(methods)[: qi % 3]
            for m in order:
                t = time.perf_counter()
                result[m] = methods[m](qi)
                times[m].append(time.perf_counter() - t)
            recall.append(len(set(result["numpy"]) & set(result["ours"])) / k)
        ours, chroma, brute = times["ours"], times["chroma"], times["numpy"]
    o50, o99 = _pct(ours)
    c50, c99 = _pct(chroma)
    b50, b99 = _pct(brute)
    return {
        "n": n,
        "insert_s": insert_s,
        "ours_p50": o50,
        "ours_p99": o99,
        "chroma_p50": c50,
        "chroma_p99": c99,
        "numpy_p50": b50,
        "numpy_p99": b99,
        "recall": float(np.mean(recall)),
    }


_WORDS = [
    "agent",
    "memory",
    "lesson",
    "task",
    "plan",
    "answer",
    "check",
    "unit",
    "fraction",
    "sum",
    "list",
    "sort",
    "tool",
    "call",
    "error",
    "result",
    "model",
    "prompt",
    "question",
    "reward",
    "step",
    "learn",
    "case",
    "retrieve",
    "vector",
    "store",
    "search",
    "number",
    "triangle",
    "angle",
    "probability",
    "count",
]


def _texts(n: int, seed: int = 0) -> list[str]:
    r = random.Random(seed)
    return [" ".join(r.choice(_WORDS) for _ in range(r.randint(5, 40))) + "." for _ in range(n)]


def bench_embedding(n_texts: int, batch: int = 64) -> dict[str, float]:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    texts = _texts(n_texts)
    ours = MiniLMEmbedder(batch_size=batch)
    model_path, tok_path = minilm_files()
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(tok_path))
    tok.enable_truncation(max_length=256)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")

    def direct(batch_texts: list[str]) -> np.ndarray:  # the textbook loop: batches in the given order
        out = []
        for s in range(0, len(batch_texts), batch):
            enc = tok.encode_batch(batch_texts[s : s + batch])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            (h,) = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
            m = mask[:, :, None]
            p = (h * m).sum(1) / m.sum(1)
            out.append(p / np.linalg.norm(p, axis=1, keepdims=True))
        return np.concatenate(out)

    ours.embed(texts[:batch])  # warm up both
    direct(texts[:batch])
    t = time.perf_counter()
    a = np.array(ours.embed(texts))
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    b = direct(texts)
    direct_s = time.perf_counter() - t
    return {
        "n": n_texts,
        "ours_per_s": n_texts / ours_s,
        "direct_per_s": n_texts / direct_s,
        "max_abs_diff": float(np.abs(a - b).max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    sizes, n_queries, n_texts = ([300], 30, 64) if args.smoke else ([1_000, 10_000, 100_000], 300, 1024)

    print(f"retrieval: random unit vectors, dim {DIM}, top-{args.k}, {n_queries} queries per size")
    print("  (vectors are random, not embedded texts: embedding 100k texts would take minutes)")
    print("  recall@k: share of the exact numpy top-k that chroma's approximate HNSW index returned;")
    print("  random 384-d vectors are HNSW's worst case (real text embeddings cluster and recall far better)")
    head = f"{'items':>8} {'insert s':>9} {'memrl p50/p99 ms':>17} {'chroma p50/p99 ms':>18} {'numpy p50/p99 ms':>17}"
    print(head + f" {'memrl/numpy p50':>16} {'memrl/chroma p50':>17} {'recall@k':>9}")
    for n in sizes:
        r = bench_retrieval(n, n_queries, args.k)
        print(
            f"{n:>8} {r['insert_s']:>9.1f} {r['ours_p50']:>8.2f}/{r['ours_p99']:<8.2f} "
            f"{r['chroma_p50']:>9.2f}/{r['chroma_p99']:<8.2f} {r['numpy_p50']:>8.3f}/{r['numpy_p99']:<8.3f} "
            f"{r['ours_p50'] / r['numpy_p50']:>16.2f} {r['ours_p50'] / r['chroma_p50']:>17.2f} {r['recall']:>9.3f}"
        )
    e = bench_embedding(n_texts)
    print(f"\nembedding: all-MiniLM-L6-v2 int8 ONNX, {e['n']} texts of 5-40 words, batch 64")
    print(f"  memrl MiniLMEmbedder: {e['ours_per_s']:.0f} texts/s")
    print(f"  onnxruntime directly: {e['direct_per_s']:.0f} texts/s")
    print(
        f"  ratio memrl/direct:   {e['ours_per_s'] / e['direct_per_s']:.2f}  (max |diff| {e['max_abs_diff']:.1e})"
    )


if __name__ == "__main__":
    main()
