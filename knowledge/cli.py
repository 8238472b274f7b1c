"""Command-line pieces for the knowledge base: ``search``, ``ask``, ``index``, ``ingest``.

The main ``streaming-engineer`` CLI mounts each command with its
``add_<name>_arguments(parser)`` and ``run_<name>(args) -> int`` pair; the
:func:`main` here wires the same pairs for ``python -m knowledge.cli``.

Exit codes: 0 success, 1 the index (or Chroma server) is unavailable or
nothing could be ingested, 2 bad input (empty or overlong query, missing
folder, unknown source).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from knowledge.documents import KINDS

EXIT_OK, EXIT_UNAVAILABLE, EXIT_BAD_INPUT = 0, 1, 2


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _add_pack(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pack",
        type=Path,
        default=None,
        metavar="DIR",
        help="knowledge pack folder (default: the pack shipped with the project)",
    )


def _query(parts: list[str] | str) -> str:
    return " ".join(parts) if isinstance(parts, list) else str(parts)


# ---------------------------------------------------------------------------
# search


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``search QUERY [--json] [-k N]``."""
    parser.add_argument("query", nargs="+", help="question or keywords (English or Chinese)")
    parser.add_argument("-k", "--top-k", dest="k", type=int, default=5, metavar="N", help="number of results (default 5)")
    parser.add_argument(
        "--json", action="store_true", help='print {"results": [{"id", "title", "path", "kind", "score", "text"}]}'
    )
    parser.add_argument("--kind", action="append", choices=KINDS, help="only these passage kinds (repeatable)")
    parser.add_argument(
        "--mode", choices=("hybrid", "dense", "bm25"), default="hybrid", help="ranking: hybrid (default), dense or bm25"
    )
    _add_pack(parser)


def run_search(args: argparse.Namespace) -> int:
    """Print the best passages for the query."""
    from knowledge.index import IndexUnavailableError
    from knowledge.retrieval import QueryError, Retriever, validate_query

    try:
        query = validate_query(_query(args.query))
        if args.k < 1:
            raise QueryError("-k must be at least 1.")
        hits = Retriever(pack_dir=args.pack).search(query, k=args.k, kinds=args.kind, mode=args.mode)
    except QueryError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    except IndexUnavailableError as exc:
        _error(str(exc))
        return EXIT_UNAVAILABLE
    if args.json:
        print(json.dumps({"results": [h.to_dict() for h in hits]}, ensure_ascii=False))
        return EXIT_OK
    if not hits:
        print("No results.")
    for number, hit in enumerate(hits, start=1):
        snippet = textwrap.shorten(" ".join(hit.text.split()), width=220, placeholder=" …")
        print(f"{number}. {hit.title}  [{hit.kind}, score {hit.score:.3f}]")
        print(f"   {hit.path}  ({hit.id})")
        print(f"   {snippet}")
    return EXIT_OK


# ---------------------------------------------------------------------------
# ask


def add_ask_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``ask QUESTION [--json]``."""
    parser.add_argument("question", nargs="+", help="your question (English or Chinese)")
    parser.add_argument("--json", action="store_true", help='print {"answer", "sources": [{"id", "title", "path", "score"}]}')
    parser.add_argument("-k", "--top-k", dest="k", type=int, default=5, metavar="N", help="passages to draw from (default 5)")
    _add_pack(parser)


def run_ask(args: argparse.Namespace) -> int:
    """Answer from the knowledge base with numbered citations (offline composer)."""
    from knowledge.answer import compose_answer
    from knowledge.index import IndexUnavailableError
    from knowledge.retrieval import QueryError, Retriever, validate_query

    try:
        question = validate_query(_query(args.question))
        hits = Retriever(pack_dir=args.pack).search(question, k=max(1, args.k))
    except QueryError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    except IndexUnavailableError as exc:
        _error(str(exc))
        return EXIT_UNAVAILABLE
    answer = compose_answer(question, hits)
    if args.json:
        payload = {
            "answer": answer.text,
            "sources": [{"id": h.id, "title": h.title, "path": h.path, "score": round(h.score, 4)} for h in answer.citations],
            "related": answer.related,
        }
        print(json.dumps(payload, ensure_ascii=False))
    else:
        print(answer.text)
    return EXIT_OK


# ---------------------------------------------------------------------------
# index


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``index [--rebuild]``."""
    parser.add_argument("--rebuild", action="store_true", help="drop the index and embed everything again")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    _add_pack(parser)


def run_index(args: argparse.Namespace) -> int:
    """Build or update the index; print counts and time."""
    from knowledge.index import IndexUnavailableError, KnowledgeIndex, index_dir

    try:
        index = KnowledgeIndex(pack_dir=args.pack)
        report = index.rebuild(progress=None) if args.rebuild else index.sync(progress=None)
    except IndexUnavailableError as exc:
        _error(str(exc))
        return EXIT_UNAVAILABLE
    import os

    store = os.environ.get("CHROMA_URL") or str(index_dir(index.home))
    if args.json:
        print(json.dumps({**report.__dict__, "store": store, "collection": index.collection_name}, ensure_ascii=False))
        return EXIT_OK
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(report.by_kind.items()))
    print(f"Indexed {report.total} passages ({kinds}) in {report.seconds:.1f} s.")
    print(f"Embedded {report.embedded}, loaded {report.shipped} shipped, unchanged {report.unchanged}, "
          f"removed {report.deleted}.")
    print(f"Store: {store} (collection {index.collection_name})")
    return EXIT_OK


# ---------------------------------------------------------------------------
# ingest


def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``ingest DIR [--name NAME]``, ``ingest --remove NAME`` and ``ingest --all``."""
    parser.add_argument("dir", nargs="?", type=Path, help="folder of .md/.txt documents to add")
    parser.add_argument("--name", help="source name for the folder (default: the folder's name)")
    parser.add_argument("--remove", metavar="NAME", nargs="?", const=True, help="remove an ingested source by name")
    parser.add_argument("--all", action="store_true", help="remove every ingested source (alone or with --remove)")
    parser.add_argument("--list", action="store_true", help="list ingested sources")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    _add_pack(parser)


def run_ingest(args: argparse.Namespace) -> int:
    """Add, list or remove ingested documents."""
    from knowledge.index import IndexUnavailableError
    from knowledge.ingest import IngestError, ingest_dir, list_ingested, remove_ingested

    try:
        if args.list:
            sources = list_ingested()
            if args.json:
                print(json.dumps({"sources": sources}, ensure_ascii=False))
            elif not sources:
                print("Nothing has been ingested.")
            else:
                for name, count in sorted(sources.items()):
                    print(f"{name}: {count} passages")
            return EXIT_OK
        if args.all or args.remove is not None:
            if args.dir is not None:
                raise IngestError("Give either a folder to ingest or --remove/--all, not both.")
            if args.remove is True and not args.all:
                raise IngestError("--remove needs a source name (or use --all).")
            target = True if args.all else str(args.remove)
            removed = remove_ingested(target, pack_dir=args.pack)
            if args.json:
                print(json.dumps({"removed": removed}, ensure_ascii=False))
            else:
                print(f"Removed: {', '.join(removed)}" if removed else "Nothing to remove.")
            return EXIT_OK
        if args.dir is None:
            raise IngestError("Give a folder to ingest, or --remove NAME / --all / --list.")
        report = ingest_dir(args.dir, name=args.name, pack_dir=args.pack)
    except IngestError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    except IndexUnavailableError as exc:
        _error(str(exc))
        return EXIT_UNAVAILABLE
    if args.json:
        print(
            json.dumps(
                {
                    "source": report.source,
                    "added": report.added,
                    "passages": report.passages,
                    "replaced": report.replaced,
                    "skipped": [{"path": p, "reason": r} for p, r in report.skipped],
                    "redacted": [{"path": p, "reason": r} for p, r in report.redacted],
                },
                ensure_ascii=False,
            )
        )
    else:
        if report.added:
            verb = "Replaced" if report.replaced else "Ingested"
            print(f"{verb} source '{report.source}': {len(report.added)} files, {report.passages} passages.")
        else:
            print(f"Nothing ingested from {args.dir}: no usable .md or .txt files.")
        if report.redacted:
            print(f"Redacted {len(report.redacted)} secret-looking value(s) before indexing:")
            for path, reason in report.redacted:
                print(f"  {path}: {reason}")
        if report.skipped:
            print(f"Skipped {len(report.skipped)} files:")
            for path, reason in report.skipped:
                print(f"  {path}: {reason}")
    return EXIT_OK if report.added else EXIT_UNAVAILABLE


# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """A parser with the four commands (the main CLI mounts them itself)."""
    parser = argparse.ArgumentParser(prog="python -m knowledge.cli", description="Knowledge base commands.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, add, run, help_text in (
        ("search", add_search_arguments, run_search, "retrieve passages"),
        ("ask", add_ask_arguments, run_ask, "answer with citations"),
        ("index", add_index_arguments, run_index, "build or update the index"),
        ("ingest", add_ingest_arguments, run_ingest, "add or remove your own documents"),
    ):
        command = sub.add_parser(name, help=help_text, description=help_text)
        add(command)
        command.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m knowledge.cli``."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
