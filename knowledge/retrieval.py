"""Hybrid retrieval over the knowledge index: dense (Chroma) + BM25, fused by RRF.

Reciprocal-rank fusion adds ``1 / (RRF_K + rank)`` from each ranking, so a
passage that both the embedding and the keywords put near the top wins, and
neither score scale has to be calibrated against the other. The fused score
is divided by its maximum (first in both lists) so it reads as 0..1.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from knowledge.documents import Passage, has_cjk
from knowledge.index import SUMMARY_SUFFIX, IndexUnavailableError, KnowledgeIndex, LexicalIndex, brief_error, tokenize

RRF_K = 60
"""The usual RRF constant: damps the difference between rank 1 and rank 2."""
MAX_QUERY_CHARS = 4000
"""Longer input is refused with a message rather than embedded: nobody asks a
4,000-character question, and a pasted megabyte would stall the tokenisers."""
CANDIDATES = 30
MEMORY_VECTORS = 50_000
"""Up to this many stored vectors (1.5 KB each with e5), dense search scores a copy in memory."""
"""How deep each ranking is read before fusion."""
BM25_WEIGHT_CJK = 0.5
"""RRF weight of the BM25 ranking for Chinese queries. jieba words against
mostly English passages (plus one 中文要点 line each) are a weaker signal
than the multilingual embedding: on the eval set BM25 alone finds 75% of
the Chinese questions' sources in the top 5, dense alone 95%."""

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")


class QueryError(ValueError):
    """A query that cannot be searched (empty, too long); the message says why."""


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        id: Stable passage id (``article:kafka#starting-offsets``).
        title: Passage title.
        path: Pack-relative path of the file (or ingested source path).
        kind: article | knowledge | template | checklist | task | user.
        score: Relevance in 0..1 (fused rank score in hybrid mode, dense
            similarity in dense mode, max-normalised BM25 in bm25 mode).
        text: The passage text.
        sources: Official pages cited by the passage's document.
        related: Ids of related documents.
        dense: Dense similarity to the query (mean cosine of the passage's
            text and summary vectors), when computed.
        lexical: Raw BM25 score, when computed.

    """

    id: str
    title: str
    path: str
    kind: str
    score: float
    text: str
    sources: tuple[dict[str, str], ...] = ()
    related: tuple[str, ...] = field(default=())
    dense: float | None = None
    lexical: float | None = None

    @property
    def doc(self) -> str:
        """The document part of the id (``kafka`` for ``article:kafka#x``)."""
        return self.id.split(":", 1)[-1].split("#", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``search --json`` results."""
        return {
            "id": self.id,
            "title": self.title,
            "path": self.path,
            "kind": self.kind,
            "score": round(self.score, 4),
            "text": self.text,
        }


def validate_query(query: str) -> str:
    """Return the stripped query or raise :class:`QueryError` with a clear message."""
    if not isinstance(query, str) or not query.strip():
        raise QueryError("Empty query: type a question or a few keywords.")
    query = query.strip()
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(
            f"Query too long: {len(query):,} characters (the limit is {MAX_QUERY_CHARS:,}). "
            "Ask a shorter question, or search for the key part of it."
        )
    return query


class Retriever:
    """Search the knowledge pack (and ingested documents).

    The index is built on first use when missing, brought up to date when the
    pack changed (only changed passages are re-embedded), and reused after.
    """

    def __init__(
        self,
        home: Path | None = None,
        pack_dir: Path | None = None,
        *,
        embedding_function: Any = None,
        progress: bool | None = None,
    ) -> None:
        """Open (and if needed build) the index.

        Args:
            home: Streaming Engineer home; default ``$STREAMING_ENGINEER_HOME``.
            pack_dir: Pack root; default the shipped pack.
            embedding_function: Override the embedding (tests, experiments).
            progress: Progress bar while building; default when stderr is a TTY.

        Raises:
            IndexUnavailableError: The store (or Chroma server) cannot be reached.

        """
        self.index = KnowledgeIndex(home=home, pack_dir=pack_dir, embedding_function=embedding_function)
        self._progress = progress
        self._lexical: LexicalIndex | None = None
        self._vectors: tuple[LexicalIndex, list[str], Any, list[str]] | None = None
        self._lock = threading.Lock()

    @property
    def lexical(self) -> LexicalIndex:
        """The BM25 side (ensures the index on first access)."""
        with self._lock:
            if self._lexical is None:
                self._lexical = self.index.ensure(progress=self._progress)
            return self._lexical

    def prefetch(self, query: str) -> None:
        """Start embedding ``query`` now, for a search expected soon (never raises)."""
        start = getattr(self.index.embedding_function, "prefetch_query", None)
        if start is None:
            return
        try:
            start(validate_query(query))
        except QueryError:
            pass

    def refresh(self) -> None:
        """Forget the loaded state so the next search re-checks the index.

        A long-lived retriever calls this after documents were ingested or
        removed by another index object or process.
        """
        with self._lock:
            self._lexical = None
            self._vectors = None

    def passages(self) -> list[Passage]:
        """Every indexed passage, in index order."""
        return list(self.lexical.passages)

    def search(
        self,
        query: str,
        k: int = 5,
        kinds: list[str] | None = None,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """Find the passages that best answer ``query``.

        Args:
            query: Question or keywords, English or Chinese.
            k: Number of hits to return.
            kinds: Keep only these passage kinds (``["article", "knowledge"]``).
            mode: ``hybrid`` (default), ``dense`` or ``bm25``.

        Returns:
            Up to ``k`` hits, best first.

        Raises:
            QueryError: Empty or overlong query, or an unknown mode.
            IndexUnavailableError: The store failed.

        """
        query = validate_query(query)
        if mode not in MODES:
            raise QueryError(f"Unknown search mode {mode!r}; use one of {', '.join(MODES)}.")
        k = max(1, int(k))
        lexical = self.lexical
        depth = max(CANDIDATES, k * 3)
        allowed = set(kinds) if kinds else None
        dense = self._dense(query, depth, allowed, lexical) if mode in ("hybrid", "dense") else []
        bm25 = self._bm25(query, depth, allowed, lexical) if mode in ("hybrid", "bm25") else []
        if mode == "dense":
            return [self._hit(pid, sim, lexical, dense=sim) for pid, sim in dense[:k]]
        if mode == "bm25":
            top = bm25[0][1] if bm25 else 1.0
            return [self._hit(pid, s / top if top else 0.0, lexical, lexical_score=s) for pid, s in bm25[:k]]
        return self._fuse(dense, bm25, k, lexical, bm25_weight=BM25_WEIGHT_CJK if has_cjk(query) else 1.0)

    # -- rankings -----------------------------------------------------------

    def _memory_vectors(self, lexical: LexicalIndex) -> tuple[list[str], Any, list[str]] | None:
        """Every stored vector as one matrix, ``(ids, matrix, kinds)``, loaded once per loaded index.

        ``None`` when the collection is larger than ``MEMORY_VECTORS`` (then Chroma searches).
        """
        import numpy as np

        with self._lock:
            if self._vectors is None or self._vectors[0] is not lexical:
                collection = self.index.collection
                if collection.count() > MEMORY_VECTORS:
                    return None
                got = collection.get(include=["embeddings", "metadatas"])
                matrix = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(got["ids"]), -1)
                norms = np.linalg.norm(matrix, axis=1, keepdims=True)
                matrix /= np.where(norms > 0, norms, 1.0)
                kinds = [str((meta or {}).get("kind", "")) for meta in got["metadatas"] or [{}] * len(got["ids"])]
                self._vectors = (lexical, list(got["ids"]), matrix, kinds)
            _, ids, matrix, kinds = self._vectors
            return ids, matrix, kinds

    def _dense(self, query: str, depth: int, allowed: set[str] | None, lexical: LexicalIndex) -> list[tuple[str, float]]:
        """Rank passages by the mean cosine of their two vectors (text and summary).

        A pack-sized index is scored exactly in memory (one matrix product, well under a millisecond,
        where a Chroma query and the fetch of the missing halves took several); a larger one asks
        Chroma for the candidates and fetches the missing half of each candidate's pair.
        """
        import numpy as np

        n = min(2 * depth, max(1, 2 * len(lexical.passages)))
        try:
            vector = np.asarray(self.index.embedding_function.embed_query([query])[0], dtype=np.float32)
            memory = self._memory_vectors(lexical)
            if memory is not None:
                ids_all, matrix, kinds = memory
                unit = vector / (float(np.linalg.norm(vector)) or 1.0)
                scores = matrix @ unit
                order = [int(i) for i in np.argsort(-scores) if not allowed or kinds[int(i)] in allowed][:n]
                ids = [ids_all[i] for i in order]
                sims = {rid: float(score) for rid, score in zip(ids_all, scores.tolist(), strict=True)}
            else:
                ids, sims = self._chroma_candidates(vector, n, allowed)
            parents: list[str] = []
            for rid in ids:
                parent = rid.removesuffix(SUMMARY_SUFFIX)
                # Ids unknown to the BM25 side (another writer on a shared
                # server) are skipped until the next refresh.
                if parent not in parents and parent in lexical.by_id:
                    parents.append(parent)
            missing = [rid for p in parents for rid in (p, p + SUMMARY_SUFFIX) if rid not in sims]
            if missing:
                got = self.index.collection.get(ids=missing, include=["embeddings"])
                for rid, emb in zip(got["ids"], got["embeddings"], strict=True):
                    sims[rid] = float(np.dot(np.asarray(emb, dtype=np.float32), vector))
        except Exception as exc:  # noqa: BLE001
            raise IndexUnavailableError(f"Dense search failed: {brief_error(exc)}") from exc
        scored = []
        for parent in parents:
            main = sims.get(parent)
            summary = sims.get(parent + SUMMARY_SUFFIX, main)
            main = summary if main is None else main
            scored.append((parent, (main + summary) / 2))
        scored.sort(key=lambda item: -item[1])
        return scored[:depth]

    def _chroma_candidates(self, vector: Any, n: int, allowed: set[str] | None) -> tuple[list[str], dict[str, float]]:
        """The ``n`` nearest vector ids by Chroma, with their cosine similarity."""
        result = self.index.collection.query(
            query_embeddings=[vector],
            n_results=n,
            where={"kind": {"$in": sorted(allowed)}} if allowed else None,
            include=["distances"],
        )
        ids = result["ids"][0] if result.get("ids") else []
        distances = result["distances"][0] if result.get("distances") else []
        return ids, {rid: 1.0 - float(d) for rid, d in zip(ids, distances, strict=False)}  # cosine distance → similarity

    def _bm25(self, query: str, depth: int, allowed: set[str] | None, lexical: LexicalIndex) -> list[tuple[str, float]]:
        scores = lexical.scores(tokenize(query))
        order = scores.argsort()[::-1]
        out = []
        for i in order:
            score = float(scores[i])
            if score <= 0:
                break
            passage = lexical.passages[int(i)]
            if allowed and passage.kind not in allowed:
                continue
            out.append((passage.id, score))
            if len(out) >= depth:
                break
        return out

    def _fuse(
        self,
        dense: list[tuple[str, float]],
        bm25: list[tuple[str, float]],
        k: int,
        lexical: LexicalIndex,
        bm25_weight: float = 1.0,
    ) -> list[Hit]:
        fused: dict[str, float] = {}
        for weight, ranking in ((1.0, dense), (bm25_weight, bm25)):
            for rank, (pid, _) in enumerate(ranking, start=1):
                fused[pid] = fused.get(pid, 0.0) + weight / (RRF_K + rank)
        best = (1.0 + bm25_weight) / (RRF_K + 1)
        dense_by_id, bm25_by_id = dict(dense), dict(bm25)
        ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [
            self._hit(pid, score / best, lexical, dense=dense_by_id.get(pid), lexical_score=bm25_by_id.get(pid, 0.0))
            for pid, score in ranked
        ]

    @staticmethod
    def _hit(
        pid: str,
        score: float,
        lexical: LexicalIndex,
        *,
        dense: float | None = None,
        lexical_score: float | None = None,
    ) -> Hit:
        passage = lexical.passages[lexical.by_id[pid]]
        return Hit(
            id=passage.id,
            title=passage.title,
            path=passage.path,
            kind=passage.kind,
            score=float(score),
            text=passage.text,
            sources=tuple(passage.sources),
            related=tuple(passage.related),
            dense=dense,
            lexical=lexical_score,
        )
