"""Benchmark of the memory layer: retrieval latency against numpy brute force, embedding throughput against
onnxruntime called directly. Prints figures and ratios side by side.

    python bench/bench_memory.py            # 1k, 10k, 100k items (a few minutes on 2 cores)
    python bench/bench_memory.py --smoke    # tiny and fast, for CI
    python bench/bench_memory.py --curve 100000 --data random --m 16 --construction-ef 100 --search-ef 100,200,400
                                            # recall@10 / latency curve over HNSW settings (and the exact path)

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

from memrl.memory import IndexSettings, LessonRecord, open_memory  # noqa: E402
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


def _vectors(kind: str, n: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`random`: unit Gaussian vectors (HNSW's hard case). `minilm`: real MiniLM embeddings of 2,000 distinct
    texts, each item (and query) a normalised mix of two of them plus a little noise: embedding 100k texts
    would take too long on 2 cores, and exact copies would make recall trivially high or ill-defined."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return _unit(rng, n), _unit(rng, n_queries)
    base = np.array(MiniLMEmbedder().embed(_texts(2000, seed)), dtype=np.float32)

    def mix(m: int) -> np.ndarray:
        a, b = rng.integers(0, len(base), m), rng.integers(0, len(base), m)
        x = base[a] + rng.uniform(0.2, 0.8, (m, 1)).astype(np.float32) * base[b]
        x += rng.normal(scale=0.02, size=x.shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return mix(n), mix(n_queries)


def _emb(path: str) -> LookupEmbedder:
    data = np.load(path)
    n, nq = len(data["items"]), len(data["queries"])
    names = [f"item {i}" for i in range(n)] + [f"query {i}" for i in range(nq)]
    return LookupEmbedder(np.concatenate([data["items"], data["queries"]]), names)


def _build(tmp: str, path: str, settings: dict) -> float:
    emb = _emb(path)
    lib = open_memory(tmp, embedder=emb, index=IndexSettings(**settings)).experience
    n, t0 = len(emb.row) - len(np.load(path)["queries"]), time.perf_counter()
    for s in range(0, n, 5000):
        lib.upsert([LessonRecord(id=f"i{i}", text=f"item {i}") for i in range(s, min(n, s + 5000))])
    return time.perf_counter() - t0


def _measure(tmp: str, path: str, settings: dict, k: int) -> tuple[float, float, float]:
    data = np.load(path)
    items, queries = data["items"], data["queries"]
    lib = open_memory(tmp, embedder=_emb(path), index=IndexSettings(**settings)).experience
    lib.query("query 0", k=k)  # warm: loads the index (or the exact cache)
    times, rec = [], []
    for qi in range(len(queries)):
        truth = {f"i{j}" for j in np.argsort(-(items @ queries[qi]))[:k]}
        t = time.perf_counter()
        ids = {h.record.id for h in lib.query(f"query {qi}", k=k)}
        times.append(time.perf_counter() - t)
        rec.append(len(ids & truth) / k)
    a = np.array(times) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(np.mean(rec))


def bench_curve(
    n: int, kind: str, m: int, construction_ef: int, search_efs: list[int], n_queries: int = 200, k: int = 10
) -> list[dict[str, float]]:
    """recall@k against exact numpy and memrl `store.query` p50/p95, for each search_ef on one built index and
    for the exact path over the same rows. Each measurement runs in a fresh process: chroma reads ef_search
    when it loads an index, so a changed search_ef reaches an index that a process has not loaded yet."""
    import multiprocessing

    items, queries = _vectors(kind, n, n_queries)
    out = []
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp, ctx.Pool(1, maxtasksperchild=1) as pool:
        path = os.path.join(tmp, "vectors.npz")
        np.savez(path, items=items, queries=queries)
        base = {"m": m, "construction_ef": construction_ef, "search_ef": search_efs[0], "exact_below": 0}
        build_s = pool.apply(_build, (os.path.join(tmp, "db"), path, base))
        for ef in [*search_efs, 0]:
            st = base | ({"search_ef": ef} if ef else {"exact_below": n + 1})
            p50, p95, recall = pool.apply(_measure, (os.path.join(tmp, "db"), path, st, k))
            row = {"n": n, "data": kind, "m": m, "construction_ef": construction_ef, "search_ef": ef}
            out.append(row | {"build_s": build_s, "p50_ms": p50, "p95_ms": p95, "recall": recall})
            label = f"search_ef {ef}" if ef else "exact (numpy)"
            print(
                f"{n:>7} {kind:>7} m={m:<3} cef={construction_ef:<4} {label:>15}  build {build_s:6.1f}s  "
                f"p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  recall@{k} {recall:.3f}",
                flush=True,
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--curve", type=int, default=0, help="run the HNSW settings curve at this many items")
    ap.add_argument("--data", choices=["random", "minilm"], default="random")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--construction-ef", type=int, default=100)
    ap.add_argument("--search-ef", default="100")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    if args.curve:
        efs = [int(x) for x in args.search_ef.split(",")]
        bench_curve(args.curve, args.data, args.m, args.construction_ef, efs, args.queries, args.k)
        return
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
