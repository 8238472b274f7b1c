"""The pack's passage vectors and BM25 tokens, computed at release time and shipped in the package.

Every user's home would otherwise embed the same shipped pack on first use
(about half a second per vector on two cores, minutes in all).
``scripts/build_pack_index.py`` computes them once, when a release is made,
into ``knowledge/prebuilt/pack-index.npz``; the index then takes each
vector from there when the exact text it embeds is found, and embeds only
what is not (an edited pack, a ``--bundle`` pack, ingested documents).

Entries are addressed by the SHA-256 of the text they were computed from,
so a stale entry can never be used for changed text: an edited passage
simply misses and is embedded locally. The file itself carries a checksum
of its arrays, verified on load; a damaged or foreign file is ignored
(with a warning) and everything is embedded as before.

Vectors are stored as float16 (half the size; cosine rankings unchanged on
the eval set, see ``scripts/measure_retrieval.py``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PREBUILT_FILE = Path(__file__).resolve().parent / "prebuilt" / "pack-index.npz"
"""Where the release-time index ships (package data)."""
FORMAT_VERSION = 1
"""Bump when the file layout changes; an older file is then ignored."""


def text_key(text: str) -> str:
    """The address of a text in the prebuilt index: SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checksum(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class PrebuiltIndex:
    """Shipped vectors (by text key) and BM25 tokens (by passage ``embed_text`` key).

    Attributes:
        model: The embedding key the vectors were computed with
            (:func:`knowledge.embeddings.embedding_key`); vectors of another
            model are never used.
        tokenizer: The BM25 tokenizer version the tokens were made with.
        fingerprint: Fingerprint of the pack passage set at build time.
        vectors: Text key → row of ``matrix``.
        matrix: The vectors (float16).
        tokens: Text key of a passage's ``embed_text`` → its BM25 tokens.

    """

    model: str
    tokenizer: int
    fingerprint: str
    vectors: dict[str, int]
    matrix: np.ndarray
    tokens: dict[str, list[str]]

    def vector(self, text: str, model: str) -> np.ndarray | None:
        """The shipped vector of ``text`` for ``model`` (float32), or ``None``."""
        if model != self.model:
            return None
        row = self.vectors.get(text_key(text))
        return None if row is None else self.matrix[row].astype(np.float32)

    def tokens_of(self, embed_text: str, tokenizer: int) -> list[str] | None:
        """The shipped BM25 tokens of a passage's ``embed_text``, or ``None``."""
        if tokenizer != self.tokenizer:
            return None
        return self.tokens.get(text_key(embed_text))


def _read(path: Path) -> PrebuiltIndex:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta"]).decode("utf-8"))
        keys, matrix = data["keys"], data["vectors"]
        token_keys, token_blob = data["token_keys"], data["tokens"]
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    if meta.get("checksum") != _checksum(keys, matrix, token_keys, token_blob):
        raise ValueError("checksum mismatch (the file is damaged)")
    if matrix.ndim != 2 or len(keys) != matrix.shape[0]:
        raise ValueError("vector table has the wrong shape")
    token_lists = json.loads(bytes(token_blob).decode("utf-8"))
    if len(token_lists) != len(token_keys):
        raise ValueError("token table has the wrong length")
    return PrebuiltIndex(
        model=str(meta["model"]),
        tokenizer=int(meta["tokenizer"]),
        fingerprint=str(meta.get("fingerprint", "")),
        vectors={str(k): i for i, k in enumerate(keys.tolist())},
        matrix=matrix,
        tokens={str(k): list(t) for k, t in zip(token_keys.tolist(), token_lists, strict=True)},
    )


@functools.lru_cache(maxsize=4)
def load_prebuilt(path: Path | str | None = None) -> PrebuiltIndex | None:
    """The shipped index, verified; ``None`` when absent, turned off or unusable.

    ``STREAMING_ENGINEER_PREBUILT=0`` turns it off (to measure a local build).
    """
    if os.environ.get("STREAMING_ENGINEER_PREBUILT", "").strip().lower() in ("0", "off", "false", "no"):
        return None
    target = Path(path) if path is not None else PREBUILT_FILE
    if not target.is_file():
        return None
    try:
        return _read(target)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the shipped knowledge index %s: %s", target, exc)
        return None


def write_prebuilt(
    path: Path,
    *,
    model: str,
    tokenizer: int,
    fingerprint: str,
    texts: Sequence[str],
    embed: Callable[[list[str]], Sequence[Any]],
    token_texts: Sequence[str],
    tokenize: Callable[[str], list[str]],
    on_progress: Callable[[int], None] | None = None,
    batch: int = 16,
) -> dict[str, Any]:
    """Compute and write a prebuilt index (the release script's work).

    Args:
        path: The ``.npz`` file to write (atomically).
        model: Embedding key of ``embed``.
        tokenizer: BM25 tokenizer version of ``tokenize``.
        fingerprint: Fingerprint of the passage set.
        texts: Every text to embed (duplicates are embedded once).
        embed: Embeds a list of texts (the passage side of the model).
        token_texts: Every passage ``embed_text`` to tokenise.
        tokenize: The BM25 tokenizer.
        on_progress: Called with the number of texts embedded in each step.
        batch: Texts per ``embed`` call.

    Returns:
        Counts and the file size, for the script to print.

    """
    unique = list(dict.fromkeys(texts))
    rows: list[np.ndarray] = []
    for start in range(0, len(unique), batch):
        chunk = unique[start : start + batch]
        rows.extend(np.asarray(v, dtype=np.float32) for v in embed(chunk))
        if on_progress:
            on_progress(len(chunk))
    keys = np.array([text_key(t) for t in unique], dtype="U64")
    matrix = np.stack(rows).astype(np.float16) if rows else np.zeros((0, 0), dtype=np.float16)
    token_unique = list(dict.fromkeys(token_texts))
    token_keys = np.array([text_key(t) for t in token_unique], dtype="U64")
    token_blob = np.frombuffer(json.dumps([tokenize(t) for t in token_unique], ensure_ascii=False).encode("utf-8"),
                               dtype=np.uint8)
    meta = {
        "format": FORMAT_VERSION,
        "model": model,
        "tokenizer": tokenizer,
        "fingerprint": fingerprint,
        "checksum": _checksum(keys, matrix, token_keys, token_blob),
    }
    meta_blob = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, meta=meta_blob, keys=keys, vectors=matrix, token_keys=token_keys, tokens=token_blob)
    os.replace(tmp, path)
    load_prebuilt.cache_clear()
    return {"vectors": len(unique), "passages": len(token_unique), "bytes": path.stat().st_size}
