"""Build and keep the knowledge index: Chroma vectors plus a BM25 index.

Chroma is the store of record for vectors: an embedded ``PersistentClient``
under ``$STREAMING_ENGINEER_HOME/index`` (default ``~/.streaming-engineer``),
or a server when ``CHROMA_URL`` is set. Every passage is upserted under its
stable id with a content hash in its metadata, so a rebuild embeds only what
changed and deletes what disappeared.

The BM25 side is small (a few hundred passages) and is saved as one JSON file
holding the passages and their tokens; loading it re-creates the BM25 matrix
in milliseconds without touching jieba, whose dictionary is loaded only when
Chinese text actually has to be tokenised.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from knowledge.documents import DEFAULT_PACK_DIR, Passage, has_cjk, load_pack_passages

log = logging.getLogger(__name__)

COLLECTION_PREFIX = "streaming-engineer"
EMBED_BATCH = 16
"""Passages per embedding call: large enough to amortise, small enough for a lively progress bar."""
UPSERT_BATCH = 256
TOKENIZER_VERSION = 4
"""Bump when :func:`tokenize` changes: saved BM25 tokens are then rebuilt."""
SUMMARY_SUFFIX = "::summary"
"""Id suffix of a passage's second (summary) vector; see ``Passage.summary_text``."""

# ---------------------------------------------------------------------------
# Locations and errors


class IndexUnavailableError(RuntimeError):
    """The index store cannot be reached or opened (the message says what to do)."""


def home_dir(home: Path | str | None = None) -> Path:
    """The Streaming Engineer home: argument, ``$STREAMING_ENGINEER_HOME`` or ``~/.streaming-engineer``."""
    if home is not None:
        return Path(home).expanduser()
    env = os.environ.get("STREAMING_ENGINEER_HOME")
    return Path(env).expanduser() if env else Path.home() / ".streaming-engineer"


def index_dir(home: Path | str | None = None) -> Path:
    """Where the index lives (embedded Chroma files and the BM25 state)."""
    return home_dir(home) / "index"


def ingested_dir(home: Path | str | None = None) -> Path:
    """Where the manifests of ingested user documents live."""
    return home_dir(home) / "ingested"


# ---------------------------------------------------------------------------
# Chroma connection


def _settings() -> Any:
    from chromadb.config import Settings

    # Never phone home: the product runs in closed networks.
    return Settings(anonymized_telemetry=False)


def connect(home: Path | str | None = None) -> Any:
    """Open the Chroma client selected by the environment.

    Args:
        home: Streaming Engineer home (for the embedded store).

    Returns:
        A ``chromadb`` client (``HttpClient`` when ``CHROMA_URL`` is set).

    Raises:
        IndexUnavailableError: The server is down or the store cannot be opened.

    """
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb

    url = os.environ.get("CHROMA_URL", "").strip()
    if url:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        ssl = parsed.scheme == "https"
        host = parsed.hostname or "localhost"
        port = parsed.port or (443 if ssl else 8000)
        try:
            client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=_settings())
            client.heartbeat()
        except Exception as exc:  # noqa: BLE001 - any failure here means "cannot reach"
            raise IndexUnavailableError(
                f"Cannot reach the Chroma server at {url} (CHROMA_URL): {brief_error(exc)}. "
                "Start it (for example `chroma run --host 127.0.0.1 --port 8000 --path DIR`) "
                "or unset CHROMA_URL to use the embedded index."
            ) from exc
        return client
    path = index_dir(home) / "chroma"
    try:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=_settings())
    except Exception as exc:  # noqa: BLE001
        raise IndexUnavailableError(f"Cannot open the index at {path}: {brief_error(exc)}") from exc


def brief_error(exc: BaseException) -> str:
    """The first line of an exception message, for one-line error reports."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return text[:300]


# ---------------------------------------------------------------------------
# Tokenisation for BM25

_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*[A-Za-z0-9]|[A-Za-z0-9]|[\u3400-\u9fff\uf900-\ufaff]+")
_CAMEL_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_EN_STOP = frozenset(
    """a an the and or of to in on for with by at from as is are was were be been being it its this that these those
    what which who whom how why when where do does did can could should would will shall may might must i we you
    they he she my our your their me us them there here if then than so not no yes into about over under up down
    out just also any all some each per via vs get use using used""".split()
)
_ZH_STOP = frozenset(
    """的 了 是 在 和 与 及 或 吗 呢 吧 啊 呀 么 着 也 就 都 而 被 把 让 给 对 从 向 到 为 以 之 其 这 那 这个 那个 哪个
    我 我们 你 你们 他 她 它 怎么 怎样 如何 什么 哪些 哪里 为什么 是否 有没有 一个 一下 可以 能 能否 应该 需要 要 会 该
    有 没有 还是 时候 时 里 中 上 下 后 前""".split()
)
# Streaming vocabulary jieba's general dictionary splits badly; whole words
# make Chinese questions match the pack's "中文要点" lines.
_ZH_TERMS = (
    "水位线 水位 微批 微批次 检查点 背压 幂等 去重 死信队列 隔离区 旁路 回放 回填 重放 补数 蓝绿 蓝绿发布 金丝雀 影子流 "
    "状态存储 状态 位移 偏移量 起始位点 消费组 消费者组 流表 流式表 物化视图 全量刷新 模式演进 列映射 类型加宽 限流 数据倾斜 "
    "倾斜 吞吐 吞吐量 延迟 新鲜度 告警 运行手册 集群策略 实例池 无服务器 触发器 触发间隔 迟到数据 乱序 事件时间 "
    "输出模式 增量 文件通知 目录列举 救援列 分片 分区 增强扇出 期望 数据质量 自动加载 作业 重试 回滚 资产包"
).split()

_jieba_lock = threading.Lock()
_jieba: Any = None


def _jieba_tokenizer() -> Any:
    """jieba, loaded on first Chinese text only, quietly, with the domain terms added."""
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)  # its dictionary load prints to stderr otherwise
            tokenizer = jieba.Tokenizer()
            for term in _ZH_TERMS:
                tokenizer.add_word(term, freq=20000)
            _jieba = tokenizer
        return _jieba


def _stem(word: str) -> str:
    """A tiny suffix folding (plural, -ing/-ed, final e), the same on both sides.

    Enough for offsets/offset, retries/retry, keeping/keeps/keep and
    delete/deleting/deleted; the stems need not be words, only consistent.
    """
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        word = word[:-2]
    if len(word) > 3 and word.endswith("e") and not word.endswith("ee"):
        word = word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """BM25 tokens of ``text``: English words, option names and their parts, Chinese words.

    ``cloudFiles.schemaLocation`` yields the whole name plus ``cloudfiles``,
    ``schemalocation``, ``cloud``, ``files``, ``schema``, ``location``, so a
    question that spells the option out in words still matches it.
    """
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(text):
        word = match.group(0)
        if has_cjk(word):
            for piece in _jieba_tokenizer().cut_for_search(word):
                piece = piece.strip()
                if piece and piece not in _ZH_STOP:
                    tokens.append(piece)
            continue
        lower = word.lower()
        if lower in _EN_STOP:
            continue
        tokens.append(_stem(lower))
        parts = [p for p in re.split(r"[._\-]+", word) if p]
        sub = []
        for part in parts:
            sub.append(part.lower())
            camel = _CAMEL_RE.findall(part)
            if len(camel) > 1:
                sub.extend(c.lower() for c in camel)
        for piece in sub:
            if piece != lower and piece not in _EN_STOP and len(piece) > 1:
                tokens.append(_stem(piece))
    return tokens


@functools.lru_cache(maxsize=16384)
def token_set(text: str) -> frozenset[str]:
    """The distinct tokens of ``text``, memoised.

    Answers compare the same passages, sentences and source titles with every
    question; tokenizing them again each time was a third of an answer's cost.
    """
    return frozenset(tokenize(text))


# ---------------------------------------------------------------------------
# Lexical (BM25) index


class LexicalIndex:
    """BM25 over the passages, plus the passages themselves for building hits."""

    def __init__(self, passages: Sequence[Passage], tokens: Sequence[Sequence[str]], fingerprint: str) -> None:
        """Create the BM25 matrix (bm25s, numpy backend).

        Args:
            passages: The indexed passages, in index order.
            tokens: Their token lists (same order).
            fingerprint: Fingerprint of the passage set this index reflects.

        """
        import bm25s

        self.passages = list(passages)
        self.tokens = [list(t) for t in tokens]
        self.fingerprint = fingerprint
        self.by_id = {p.id: i for i, p in enumerate(self.passages)}
        self._bm25 = bm25s.BM25()
        if self.passages:
            self._bm25.index([t or [""] for t in self.tokens], show_progress=False)

    @classmethod
    def build(cls, passages: Sequence[Passage], fingerprint: str) -> LexicalIndex:
        """Tokenise and index ``passages`` (shipped tokens are reused for the pack's unchanged passages)."""
        from knowledge.prebuilt import load_prebuilt

        shipped = load_prebuilt()
        tokens = []
        for passage in passages:
            known = shipped.tokens_of(passage.embed_text, TOKENIZER_VERSION) if shipped else None
            tokens.append(known if known is not None else tokenize(passage.embed_text))
        return cls(passages, tokens, fingerprint)

    def scores(self, query_tokens: list[str]) -> Any:
        """BM25 score of every passage (numpy array, index order)."""
        import numpy as np

        if not self.passages or not query_tokens:
            return np.zeros(len(self.passages), dtype=np.float32)
        return self._bm25.get_scores(query_tokens)

    def save(self, path: Path) -> None:
        """Write the passages and tokens as one JSON file (atomically)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "version": 1,
            "tokenizer": TOKENIZER_VERSION,
            "fingerprint": self.fingerprint,
            "passages": [p.to_json() for p in self.passages],
            "tokens": self.tokens,
        }
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LexicalIndex | None:
        """Read a saved index; ``None`` when missing or unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != 1 or data.get("tokenizer") != TOKENIZER_VERSION:
                return None
            passages = [Passage.from_json(p) for p in data["passages"]]
            return cls(passages, data["tokens"], data["fingerprint"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


# ---------------------------------------------------------------------------
# Building and syncing


def fingerprint(passages: Sequence[Passage]) -> str:
    """Order-independent fingerprint of a passage set (ids and content hashes)."""
    digest = hashlib.sha256()
    for pid, chash in sorted((p.id, p.content_hash) for p in passages):
        digest.update(f"{pid}\0{chash}\n".encode())
    return digest.hexdigest()[:32]


def load_ingested(home: Path | str | None = None) -> dict[str, list[Passage]]:
    """Passages of every ingested source, by source name (from the manifests)."""
    folder = ingested_dir(home)
    out: dict[str, list[Passage]] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            out[str(data["source"])] = [Passage.from_json(p) for p in data["passages"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable ingest manifest %s: %s", path.name, exc)
    return out


@dataclass
class SyncReport:
    """What a build or update did.

    Attributes:
        total: Passages in the index afterwards.
        embedded: Passages embedded here (new or changed, and not shipped).
        shipped: New or changed passages whose vectors came with the package (:mod:`knowledge.prebuilt`).
        unchanged: Passages kept as they were.
        deleted: Stale passages removed.
        seconds: Wall time.
        by_kind: Passage count per kind.

    """

    total: int = 0
    embedded: int = 0
    shipped: int = 0
    unchanged: int = 0
    deleted: int = 0
    seconds: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Build progress, for front ends


@dataclass
class _Progress:
    """One running store update of this process, as :func:`build_status` reports it."""

    owner: Any
    total: int
    to_embed: int
    loaded_count: int = 0
    embedded_count: int = 0
    started: float = field(default_factory=time.perf_counter)
    embed_started: float | None = None

    def __post_init__(self) -> None:
        with _progress_lock:
            _progress[id(self)] = self

    def loaded(self, count: int) -> None:
        self.loaded_count += count

    def embedded(self, count: int) -> None:
        if self.embed_started is None:
            self.embed_started = time.perf_counter()
        self.embedded_count += count

    def close(self) -> None:
        with _progress_lock:
            _progress.pop(id(self), None)

    def message(self) -> str:
        if self.to_embed and self.loaded_count >= self.total - self.to_embed:
            text = f"embedding {self.embedded_count} of {self.to_embed} new or changed passages"
            if self.embedded_count and self.embed_started is not None:
                per = (time.perf_counter() - self.embed_started) / self.embedded_count
                text += f", about {max(1, round(per * (self.to_embed - self.embedded_count)))} s left"
            return text
        return f"loading {self.total - self.to_embed} shipped passages"


_progress_lock = threading.Lock()
_progress: dict[int, _Progress] = {}


def build_status() -> str | None:
    """A one-line message while this process builds or updates a knowledge index, else ``None``.

    Front ends poll it to say why a first question waits: the web app shows
    it while the index is prepared, the terminal has its progress bar. The
    message is plain text, for example "Preparing the knowledge index:
    embedding 12 of 40 new or changed passages, about 20 s left".
    """
    with _progress_lock:
        running = list(_progress.values())
    if not running:
        return None
    return "Preparing the knowledge index: " + "; ".join(p.message() for p in running) + "…"


class KnowledgeIndex:
    """The Chroma collection and BM25 index for one pack and one embedding model."""

    def __init__(
        self,
        home: Path | str | None = None,
        pack_dir: Path | str | None = None,
        embedding_function: Any = None,
    ) -> None:
        """Connect to the store (nothing is built yet).

        Args:
            home: Streaming Engineer home; default from the environment.
            pack_dir: Pack root; default the shipped pack.
            embedding_function: A Chroma embedding function; default
                :func:`knowledge.embeddings.default_embedding_function`.

        Raises:
            IndexUnavailableError: The store cannot be reached.

        """
        from knowledge.embeddings import default_embedding_function, embedding_key

        self.home = home_dir(home)
        self.pack_dir = Path(pack_dir or DEFAULT_PACK_DIR)
        if not self.pack_dir.is_dir():
            raise IndexUnavailableError(f"Knowledge pack folder not found: {self.pack_dir}")
        self.embedding_function = embedding_function or default_embedding_function()
        # One collection per pack: a --bundle pack must not sync away the shipped pack's passages.
        pack_tag = "" if self.pack_dir.resolve() == Path(DEFAULT_PACK_DIR).resolve() else "-" + hashlib.sha256(
            str(self.pack_dir.resolve()).encode()).hexdigest()[:8]
        self.collection_name = f"{COLLECTION_PREFIX}-{embedding_key(self.embedding_function)}"[:110] + pack_tag
        self.client = connect(self.home)
        self._collection: Any = None
        self.last_lexical: LexicalIndex | None = None

    # -- store access -----------------------------------------------------

    @property
    def collection(self) -> Any:
        """The Chroma collection (created on first access)."""
        if self._collection is None:
            try:
                self._collection = self.client.get_or_create_collection(
                    name=self.collection_name,
                    embedding_function=self.embedding_function,
                    configuration={"hnsw": {"space": "cosine"}},
                )
            except Exception as exc:  # noqa: BLE001
                raise IndexUnavailableError(f"Cannot open collection {self.collection_name}: {brief_error(exc)}") from exc
        return self._collection

    @property
    def lexical_path(self) -> Path:
        """The saved BM25 state of this collection."""
        return index_dir(self.home) / f"lexical-{self.collection_name}.json"

    def desired_passages(self, ingested: dict[str, list[Passage]] | None = None) -> list[Passage]:
        """Pack passages plus every ingested source's passages."""
        passages = load_pack_passages(self.pack_dir)
        seen = {p.id for p in passages}
        for source_passages in (load_ingested(self.home) if ingested is None else ingested).values():
            for passage in source_passages:
                if passage.id not in seen:
                    seen.add(passage.id)
                    passages.append(passage)
        return passages

    def stored_hashes(self) -> dict[str, str]:
        """Record id → content hash of everything in the collection (passages and summaries)."""
        try:
            got = self.collection.get(include=["metadatas"])
        except IndexUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise IndexUnavailableError(f"Cannot read the index: {brief_error(exc)}") from exc
        return {pid: str((meta or {}).get("hash", "")) for pid, meta in zip(got["ids"], got["metadatas"] or [], strict=False)}

    # -- building ---------------------------------------------------------

    def sync(
        self,
        passages: Sequence[Passage] | None = None,
        *,
        progress: bool | None = None,
    ) -> SyncReport:
        """Make the collection hold exactly ``passages``; re-embed only changes.

        Args:
            passages: The wanted passage set; default :meth:`desired_passages`.
            progress: Show a progress bar on stderr; default when stderr is a TTY.

        Returns:
            What was embedded, kept and deleted.

        Raises:
            IndexUnavailableError: The store failed during the update.

        """
        started = time.perf_counter()
        wanted = list(passages if passages is not None else self.desired_passages())
        stored = self.stored_hashes()
        changed = [p for p in wanted if stored.get(p.id) != p.content_hash or stored.get(p.id + SUMMARY_SUFFIX) != p.content_hash]
        wanted_ids = {p.id for p in wanted} | {p.id + SUMMARY_SUFFIX for p in wanted}
        stale = [pid for pid in stored if pid not in wanted_ids]
        try:
            shipped = self._embed_and_upsert(changed, progress=sys.stderr.isatty() if progress is None else progress)
            for start in range(0, len(stale), UPSERT_BATCH):
                self.collection.delete(ids=stale[start : start + UPSERT_BATCH])
        except IndexUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise IndexUnavailableError(f"Updating the index failed: {brief_error(exc)}") from exc
        lexical = LexicalIndex.build(wanted, fingerprint(wanted))
        lexical.save(self.lexical_path)
        self.last_lexical = lexical
        by_kind: dict[str, int] = {}
        for p in wanted:
            by_kind[p.kind] = by_kind.get(p.kind, 0) + 1
        return SyncReport(
            total=len(wanted),
            embedded=len(changed) - shipped,
            shipped=shipped,
            unchanged=len(wanted) - len(changed),
            deleted=len(stale),
            seconds=time.perf_counter() - started,
            by_kind=by_kind,
        )

    def _embed_and_upsert(self, passages: Sequence[Passage], *, progress: bool) -> int:
        """Store the vectors of ``passages``: shipped ones as they are, the rest embedded here.

        Shipped vectors (:mod:`knowledge.prebuilt`) are found by the exact text
        they embed, so only new or edited text reaches the model; the
        embedding shows a progress bar (terminal) and :func:`build_status`
        (web app).

        Returns:
            How many passages took both vectors from the shipped index.

        """
        if not passages:
            return 0
        from knowledge.embeddings import embedding_key
        from knowledge.prebuilt import load_prebuilt

        shipped = load_prebuilt()
        model = embedding_key(self.embedding_function)
        known: dict[str, Any] = {}
        if shipped is not None:
            for p in passages:
                for text in (p.embed_text, p.summary_text):
                    vector = shipped.vector(text, model)
                    if vector is not None:
                        known[text] = vector
        ready = [p for p in passages if p.embed_text in known and p.summary_text in known]
        todo = [p for p in passages if not (p.embed_text in known and p.summary_text in known)]
        tracker = _Progress(self, len(passages), len(todo))
        try:
            for start in range(0, len(ready), UPSERT_BATCH // 2):
                batch = ready[start : start + UPSERT_BATCH // 2]
                self._upsert(batch, [known[p.embed_text] for p in batch] + [known[p.summary_text] for p in batch])
                tracker.loaded(len(batch))
            if todo:
                self._embed(todo, known, tracker, progress=progress)
        finally:
            tracker.close()
        return len(ready)

    def _embed(self, passages: Sequence[Passage], known: dict[str, Any], tracker: _Progress, *, progress: bool) -> None:
        from tqdm import tqdm

        bar = tqdm(
            total=len(passages),
            desc="Embedding passages",
            unit="passage",
            file=sys.stderr,
            disable=not progress,
            mininterval=0.5,
        )
        try:
            for start in range(0, len(passages), EMBED_BATCH):
                batch = passages[start : start + EMBED_BATCH]
                texts = [p.embed_text for p in batch] + [p.summary_text for p in batch]
                missing = list(dict.fromkeys(t for t in texts if t not in known))
                if missing:
                    known.update(zip(missing, self.embedding_function(missing), strict=True))
                self._upsert(batch, [known[t] for t in texts])
                bar.update(len(batch))
                tracker.embedded(len(batch))
        finally:
            bar.close()

    def _upsert(self, batch: Sequence[Passage], vectors: Sequence[Any]) -> None:
        """Upsert passages and their summary records (``vectors``: texts first, then summaries)."""
        metadatas = [p.to_metadata() for p in batch]
        self.collection.upsert(
            ids=[p.id for p in batch] + [p.id + SUMMARY_SUFFIX for p in batch],
            documents=[p.text for p in batch] + [p.summary_text for p in batch],
            metadatas=[{**m, "role": "passage"} for m in metadatas]
            + [{**m, "role": "summary", "parent": p.id} for m, p in zip(metadatas, batch, strict=True)],
            embeddings=list(vectors),
        )

    def rebuild(self, *, progress: bool | None = None) -> SyncReport:
        """Drop this collection and its BM25 state, then build from scratch."""
        try:
            self.client.delete_collection(self.collection_name)
        except Exception:  # noqa: BLE001 - a missing collection is fine
            pass
        self._collection = None
        self.lexical_path.unlink(missing_ok=True)
        return self.sync(progress=progress)

    def ensure(self, *, progress: bool | None = None) -> LexicalIndex:
        """Bring the index up to date if needed and return the BM25 side.

        Cheap when nothing changed: the pack is re-read (milliseconds), its
        fingerprint compared with the saved BM25 state, and the collection
        size checked; only on a difference does :meth:`sync` run.
        """
        wanted = self.desired_passages()
        wanted_fp = fingerprint(wanted)
        lexical = LexicalIndex.load(self.lexical_path)
        try:
            count = self.collection.count()
        except IndexUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise IndexUnavailableError(f"Cannot read the index: {brief_error(exc)}") from exc
        if lexical is not None and lexical.fingerprint == wanted_fp and count == 2 * len(wanted):
            return lexical
        self.sync(wanted, progress=progress)
        return self.last_lexical or LexicalIndex.build(wanted, wanted_fp)
