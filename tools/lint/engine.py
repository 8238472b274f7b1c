"""Walk paths, read each file once, dispatch it to the rules, apply suppressions.

Guarantees, whatever the input: user code is parsed, never executed; nothing
is written; one bad file (too big, binary, not UTF-8, unparseable, an alias
bomb) gets a clear ``error`` on its own ``FileResult`` and the others are still
checked.
"""

from __future__ import annotations

import ast
import os
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from tools.budget import NOT_CHECKED, OutOfTime, check_time
from tools.lint.config_loader import ConfigError, load_json, load_yaml
from tools.lint.config_rules import check_config
from tools.lint.model import FileResult, Finding
from tools.lint.notebook import Notebook, split_ipynb, split_source
from tools.lint.python_rules import check_python
from tools.lint.secret_rules import check_secrets, mask_secrets
from tools.lint.serverless import check_serverless_triggers
from tools.lint.sql_rules import check_sql_cells

MAX_FILE_BYTES = 2 * 1024 * 1024
# A .ipynb carries its outputs (images, tables) beside the code: allow more.
MAX_NOTEBOOK_BYTES = 16 * 1024 * 1024
SUFFIX_KINDS: dict[str, str] = {".py": "python", ".sql": "sql", ".ipynb": "ipynb", ".yaml": "yaml", ".yml": "yaml",
                                 ".json": "json"}
SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache",
                       ".pytest_cache", ".tox"})
_BINARY_SNIFF = 8192
_SUPPRESS = re.compile(r"(?:#|--|//)\s*streaming-engineer:\s*ignore(?P<file>-file)?(?:\[(?P<rules>[^\]]*)\])?", re.I)


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[Path, bool]]:
    """Files to check, in a stable order.

    Yields:
        ``(path, explicit)``: ``explicit`` is True for a file named on the
        command line (checked whatever its suffix); files found by walking a
        folder are kept only when their suffix is supported.

    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
                for name in sorted(files):
                    if Path(name).suffix.lower() in SUFFIX_KINDS:
                        yield Path(folder) / name, False
        else:
            yield path, True


def _read_text(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """The file's text, or ``ValueError`` saying why it cannot be checked."""
    size = path.stat().st_size
    if size > limit:
        raise ValueError(f"file is {size / (1024 * 1024):.1f} MB, over the {limit // (1024 * 1024)} MB limit; skipped")
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # grew since stat
        raise ValueError(f"file is over the {limit // (1024 * 1024)} MB limit; skipped")
    if b"\x00" in data[:_BINARY_SNIFF]:
        raise ValueError("binary file (contains NUL bytes); skipped")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); skipped — save the file as UTF-8"
        ) from None


def _suppressions(lines: list[str]) -> tuple[dict[int, set[str] | None], dict[int, set[str] | None], set[str] | None]:
    """Suppression comments: trailing and standalone ones per line (``None`` = every rule), and file-wide.

    A trailing comment covers its own line; a comment alone on its line also
    covers the next line (so it never leaks from one statement to the next).
    """
    per_line: dict[int, set[str] | None] = {}
    standalone: dict[int, set[str] | None] = {}
    whole_file: set[str] | None = set()
    for number, line in enumerate(lines, start=1):
        if "streaming-engineer" not in line:
            continue
        match = _SUPPRESS.search(line)
        if not match:
            continue
        rules = {r.strip().upper() for r in (match.group("rules") or "").split(",") if r.strip()} or None
        if match.group("file"):
            whole_file = None if rules is None or whole_file is None else whole_file | rules
        else:
            per_line[number] = rules
            if line[: match.start()].strip() == "":
                standalone[number] = rules
    return per_line, standalone, whole_file


def _covers(rules: set[str] | None, rule: str) -> bool:
    return rules is None or rule in rules


def _is_suppressed(finding: Finding, per_line: dict[int, set[str] | None], standalone: dict[int, set[str] | None],
                   whole_file: set[str] | None) -> bool:
    if whole_file is None or finding.rule in whole_file:
        return True
    if finding.line is None:
        return False
    if finding.line in per_line and _covers(per_line[finding.line], finding.rule):
        return True
    above = finding.line - 1
    return above in standalone and _covers(standalone[above], finding.rule)


def _apply_suppressions(findings: list[Finding], lines: list[str]) -> list[Finding]:
    per_line, standalone, whole_file = _suppressions(lines)
    if not per_line and whole_file == set():
        return findings
    # PASS findings are evidence, not complaints: nothing to suppress.
    return [f for f in findings if f.status == "PASS" or not _is_suppressed(f, per_line, standalone, whole_file)]


_PARSE_LOCK = threading.Lock()


def parse_python(text: str) -> ast.Module:
    """``ast.parse`` behind a lock: on Python 3.11 concurrent parses can fail (python/cpython#106905)."""
    with _PARSE_LOCK:
        return ast.parse(text)


def _parse_cells(notebook: Notebook, language_text: str) -> tuple[ast.Module | None, str, list[str], str | None]:
    """Parse the notebook's Python cells as one module, leaving out cells with a syntax error.

    Returns:
        ``(tree, text, warnings, error)``: the tree of the cells that parse (``None``
        when none does), its text, one warning per skipped cell, and the error
        when the Python could not be analysed at all.

    """
    skip: set[int] = set()
    warnings: list[str] = []
    text = language_text
    while True:
        try:
            return parse_python(text), text, warnings, None
        except SyntaxError as exc:
            cell = notebook.cell_at(exc.lineno or 0) if notebook.is_notebook else None
            where = f"line {exc.lineno}: {exc.msg}"
            if cell is None or cell.index in skip:
                return None, text, warnings, f"Python syntax error at {where}"
            skip.add(cell.index)
            warnings.append(f"cell {cell.index} (lines {cell.first_line}-{cell.last_line}) was not analysed: "
                            f"Python syntax error at {where}; the other cells were analysed")
            text = notebook.module_text("python", skip)
        except (ValueError, RecursionError, MemoryError) as exc:
            return None, text, warnings, f"Python source could not be parsed ({type(exc).__name__})"


def _check_notebook(notebook: Notebook) -> tuple[list[Finding], list[str], str | None]:
    """Every rule over a notebook's cells, each cell in its own language.

    Returns:
        ``(findings, warnings, error)``; ``error`` when no code cell could be analysed.

    """
    findings: list[Finding] = []
    warnings: list[str] = []
    python_cells = [c for c in notebook.cells if c.language == "python" and c.text.strip()]
    sql_cells = [c for c in notebook.cells if c.language == "sql" and c.text.strip()]
    error: str | None = None
    analysed = bool(sql_cells)
    if python_cells:
        tree, text, warnings, error = _parse_cells(notebook, notebook.module_text("python"))
        check_time()
        if tree is not None and len(warnings) < len(python_cells):
            findings += check_python(tree, notebook.lines, text)
            analysed = True
        elif tree is not None:  # every Python cell was left out
            error = "no Python cell parses (" + "; ".join(w.split(": ", 1)[-1].split(";")[0] for w in warnings) + ")"
            warnings = []
    if sql_cells:
        findings += check_sql_cells([(c.text, c.first_line - 1) for c in sql_cells])
    if error and analysed:
        # Some cells were analysed: the broken Python is a warning, not a file we could not read.
        warnings.append(f"the Python cells were not analysed: {error}")
        error = None
    elif error:
        error = f"{error}; only the plaintext-secret rules were applied"
    return findings, warnings, error


def _check_config(text: str, lines: list[str], kind: str) -> tuple[list[Finding], str | None]:
    try:
        documents = load_yaml(text) if kind == "yaml" else load_json(text)
    except ConfigError as exc:
        return [], f"{exc}; only the plaintext-secret rules were applied"
    return check_config(documents, lines), None


def _label_cells(findings: list[Finding], notebook: Notebook) -> None:
    """Name the cell in each message of a ``.ipynb`` finding (its line is a line of the cells laid out as a script)."""
    for finding in findings:
        cell = notebook.cell_at(finding.line) if finding.line else None
        if cell is not None:
            finding.message = f"[cell {cell.index}] {finding.message}"


def check_text(text: str, kind: str, path: str = "<text>") -> FileResult:
    """Check source text that is not (or not yet) a file.

    Args:
        text: the source.
        kind: ``python``, ``sql``, ``ipynb``, ``yaml`` or ``json``. Python and SQL
            texts may be Databricks source notebooks: they are checked cell by cell.
        path: the name to report.

    Returns:
        The file's result, suppressions applied, findings sorted by line.

    """
    if kind not in SUFFIX_KINDS.values():
        return FileResult(path, [], f"unsupported kind '{kind}' (expected python, sql, ipynb, yaml or json)")
    lines = text.splitlines()
    error: str | None = None
    warnings: list[str] = []
    notebook: Notebook | None = None
    try:
        if kind in ("python", "sql"):
            notebook = split_source(text, kind)
            findings, warnings, error = _check_notebook(notebook)
        elif kind == "ipynb":
            try:
                notebook = split_ipynb(text)
            except ValueError as exc:
                return FileResult(path, [], f"{exc}; skipped")
            lines = notebook.lines
            findings, warnings, error = _check_notebook(notebook)
        else:
            findings, error = _check_config(text, lines, kind)
    except RecursionError:
        findings, error = [], "nested too deeply to analyse; only the plaintext-secret rules were applied"
    secret_kind = "python" if kind == "ipynb" else kind
    for finding in findings:
        if finding.evidence:
            finding.evidence = mask_secrets(finding.evidence, secret_kind)
    findings += check_secrets(lines, secret_kind)
    findings = _apply_suppressions(findings, lines)
    if kind == "ipynb" and notebook is not None:
        _label_cells(findings, notebook)
    findings.sort(key=lambda f: (f.line or 0, f.rule, f.status))
    return FileResult(path, findings, error, warnings)


def check_file(path: str | os.PathLike[str]) -> FileResult:
    """Check one file; every problem reading it becomes the result's ``error``."""
    check_time()
    path = Path(path)
    shown = path.as_posix()
    kind = SUFFIX_KINDS.get(path.suffix.lower())
    if not path.exists():
        return FileResult(shown, [], "path not found")
    if not path.is_file():
        return FileResult(shown, [], "not a regular file; skipped")
    if kind is None:
        return FileResult(shown, [], f"unsupported file type '{path.suffix or path.name}' "
                                     "(expected .py, .sql, .ipynb, .yaml, .yml or .json); skipped")
    try:
        text = _read_text(path, MAX_NOTEBOOK_BYTES if kind == "ipynb" else MAX_FILE_BYTES)
    except OSError as exc:
        return FileResult(shown, [], f"cannot read file: {exc.strerror or exc}")
    except ValueError as exc:
        return FileResult(shown, [], str(exc))
    return check_text(text, kind, shown)


def check_paths(paths: list[str | os.PathLike[str]]) -> list[FileResult]:
    """Check files and folders (walked recursively, skipping VCS/venv/cache folders).

    Args:
        paths: files and/or folders.

    Returns:
        One result per file, in walk order; a missing path gets a result with
        ``error="path not found"``.

    """
    results = []
    for path, _ in iter_files(paths):
        try:
            results.append(check_file(path))
        except OutOfTime:  # a request's budget ran out (tools.budget): this file and the rest are named, not checked
            results.append(FileResult(path.as_posix(), [], NOT_CHECKED))
    check_serverless_triggers(results)  # joins job specs with the code their serverless tasks run
    return results
