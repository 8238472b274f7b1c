"""Build the precomputed index of the shipped knowledge pack (run at release time).

Writes ``knowledge/prebuilt/pack-index.npz`` (package data): the e5 vector of
every text the index embeds for the pack's passages (each passage's text and
its summary), as float16, and the passages' BM25 tokens, each addressed by
the SHA-256 of its text. A new home then loads these instead of embedding
the pack (see ``knowledge/prebuilt.py``).

Vectors of texts already in the current file are reused, so after a pack
edit only the changed passages are embedded (with a progress bar).

Usage::

    python scripts/build_pack_index.py            # (re)build after editing the pack
    python scripts/build_pack_index.py --check    # exit 1 when the shipped file misses a pack passage
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tqdm import tqdm  # noqa: E402

from knowledge.documents import DEFAULT_PACK_DIR, load_pack_passages  # noqa: E402
from knowledge.embeddings import E5EmbeddingFunction, embedding_key  # noqa: E402
from knowledge.index import TOKENIZER_VERSION, fingerprint, tokenize  # noqa: E402
from knowledge.prebuilt import PREBUILT_FILE, load_prebuilt, write_prebuilt  # noqa: E402


def missing_texts(pack: Path, path: Path) -> tuple[int, int, list[str]]:
    """``(texts, passages, ids of passages the file lacks)`` for the pack."""
    passages = load_pack_passages(pack)
    shipped = load_prebuilt(path)
    model = embedding_key(E5EmbeddingFunction())
    lacking = []
    for p in passages:
        if shipped is None or any(shipped.vector(t, model) is None for t in (p.embed_text, p.summary_text)) \
                or shipped.tokens_of(p.embed_text, TOKENIZER_VERSION) is None:
            lacking.append(p.id)
    return 2 * len(passages), len(passages), lacking


def main(argv: list[str] | None = None) -> int:
    """Build (or check) the prebuilt pack index."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", type=Path, default=DEFAULT_PACK_DIR, help="pack folder (default: the shipped pack)")
    parser.add_argument("--out", type=Path, default=PREBUILT_FILE, help=f"output file (default: {PREBUILT_FILE})")
    parser.add_argument("--check", action="store_true", help="only check that the file covers every pack passage")
    args = parser.parse_args(argv)

    if args.check:
        _, count, lacking = missing_texts(args.pack, args.out)
        if lacking:
            print(f"{args.out} lacks {len(lacking)} of {count} pack passages (e.g. {', '.join(lacking[:5])}); "
                  "run `python scripts/build_pack_index.py`.", file=sys.stderr)
            return 1
        print(f"{args.out} covers all {count} pack passages.")
        return 0

    passages = load_pack_passages(args.pack)
    function = E5EmbeddingFunction()
    model = embedding_key(function)
    previous = load_prebuilt(args.out)
    texts = [t for p in passages for t in (p.embed_text, p.summary_text)]
    unique = list(dict.fromkeys(texts))
    reused = [t for t in unique if previous is not None and previous.vector(t, model) is not None]
    bar = tqdm(total=len(unique) - len(reused), desc="Embedding pack texts", unit="text", file=sys.stderr)

    def embed(batch: list[str]) -> list:
        out = []
        for text in batch:
            vector = previous.vector(text, model) if previous is not None else None
            if vector is None:
                vector = function([text])[0]
                bar.update(1)
            out.append(vector)
        return out

    started = time.perf_counter()
    stats = write_prebuilt(
        args.out, model=model, tokenizer=TOKENIZER_VERSION, fingerprint=fingerprint(passages),
        texts=texts, embed=embed, token_texts=[p.embed_text for p in passages], tokenize=tokenize,
    )
    bar.close()
    print(f"Wrote {args.out}: {stats['passages']} passages, {stats['vectors']} vectors "
          f"({len(reused)} reused, {stats['vectors'] - len(reused)} embedded), {stats['bytes'] / 1024:.0f} KB, "
          f"{time.perf_counter() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
