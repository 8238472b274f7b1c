"""``streaming-engineer check PATH... --format text|json|sarif``.

The main CLI mounts this subcommand with ``add_arguments`` and ``run``;
``python -m tools.lint`` runs it standalone (e.g. as a pre-commit hook).
Exit codes: 0 nothing FAILs, 1 something FAILs, 2 a file could not be analysed
(unless ``--allow-unanalysed``) or a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.lint.catalog import RULES, rules_markdown
from tools.lint.engine import check_paths
from tools.lint.report import to_json, to_sarif, to_text

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_UNANALYSED = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``check`` arguments on ``parser``."""
    parser.description = (
        "Review Databricks streaming pipeline code, notebooks and configs (PySpark, DLT / Lakeflow Python, SQL, "
        "Databricks source notebooks (.py/.sql) cell by cell with %sql/%python cells in their own language, "
        "Jupyter .ipynb, YAML/JSON job, pipeline and connector specs) against the Streaming Engineer checklists. "
        "Exit status: 0 when nothing FAILs, 1 when something FAILs, 2 when a file could not be analysed "
        "(unless --allow-unanalysed) or on a usage error."
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files or folders to check (.py, .sql, .ipynb, .yaml, .yml, .json; folders are walked; "
                             ".git, .venv, node_modules, __pycache__ are skipped)")
    parser.add_argument("--format", dest="output_format", choices=("text", "json", "sarif"), default="text",
                        help="output format (default: text)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="text/sarif: also show PASS findings (positive evidence)")
    parser.add_argument("--ignore", default="", metavar="RULES",
                        help="comma-separated rule ids to leave out, e.g. SE402,SE905")
    parser.add_argument("--allow-unanalysed", action="store_true",
                        help="exit 0/1 by FAILs alone even when a file could not be analysed (it is still reported)")
    parser.add_argument("--list-rules", action="store_true", help="print the rule table (Markdown) and exit")


def _usage_error(message: str) -> int:
    print(f"streaming-engineer check: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    """Run the check described by parsed ``args``; returns the exit code."""
    if getattr(args, "list_rules", False):
        print(rules_markdown(), end="")
        return EXIT_OK
    paths = list(getattr(args, "paths", None) or [])
    if not paths:
        return _usage_error("no PATH given (usage: streaming-engineer check PATH... [--format text|json|sarif])")
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        return _usage_error("path not found: " + ", ".join(str(p) for p in missing))
    ignored = {r.strip().upper() for r in (getattr(args, "ignore", "") or "").split(",") if r.strip()}
    unknown = sorted(ignored - set(RULES))
    if unknown:
        return _usage_error(f"unknown rule id(s) in --ignore: {', '.join(unknown)}")
    results = check_paths(paths)
    if ignored:
        for result in results:
            result.findings = [f for f in result.findings if f.rule not in ignored]
    output_format = getattr(args, "output_format", None) or getattr(args, "format", None) or "text"
    verbose = bool(getattr(args, "verbose", False))
    if output_format == "json":
        print(to_json(results))
    elif output_format == "sarif":
        print(to_sarif(results, verbose))
    else:
        print(to_text(results, verbose))
    if any(r.unanalysed for r in results) and not getattr(args, "allow_unanalysed", False):
        return EXIT_UNANALYSED
    return EXIT_FAIL if any(r.has_fail for r in results) else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: parse ``argv`` and run."""
    parser = argparse.ArgumentParser(prog="streaming-engineer check")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    return run(args)
