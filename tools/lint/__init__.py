"""Streaming-pipeline linter behind ``streaming-engineer check``.

Rules for PySpark Structured Streaming, DLT / ``pyspark.pipelines`` code, SQL
streaming tables and YAML/JSON job, pipeline and connector specs, each mapped
to a bundle checklist item (see ``RULES.md``).

Public API:
    check_paths(paths) -> list[FileResult]
    check_file(path) -> FileResult
    check_text(text, kind, path) -> FileResult
"""

from tools.lint.catalog import RULES
from tools.lint.engine import MAX_FILE_BYTES, check_file, check_paths, check_text
from tools.lint.model import STATUSES, TOPICS, FileResult, Finding, Rule

__all__ = [
    "MAX_FILE_BYTES",
    "RULES",
    "STATUSES",
    "TOPICS",
    "FileResult",
    "Finding",
    "Rule",
    "check_file",
    "check_paths",
    "check_text",
]
