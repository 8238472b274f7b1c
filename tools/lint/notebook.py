"""Notebooks as cells: Databricks source notebooks (``.py`` / ``.sql``) and Jupyter ``.ipynb``.

A Databricks source notebook is plain text: a header line (``# Databricks
notebook source`` or ``-- Databricks notebook source``), cells separated by
``# COMMAND ----------`` (``-- COMMAND ----------`` in SQL notebooks), and cells
in another language written as comment lines starting with ``# MAGIC %sql`` /
``-- MAGIC %python``. The linter checks each cell in its own language, keeping
every line number of the file: a SQL cell is one SQL text of its own (SQL
cells in Lakeflow notebooks carry no semicolons, so the cell is the statement
boundary), and the Python cells together are one module (cells share names)
in which the lines of other cells are blank.

A ``.ipynb`` notebook is read with ``nbformat``; its code cells are laid out
one after the other, each preceded by a ``# COMMAND ----------`` line, so a
finding's line is the line of that script (``jupyter nbconvert --to script``
gives the same layout) and its message names the cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PY_HEADER = "# Databricks notebook source"
SQL_HEADER = "-- Databricks notebook source"
_SEPARATOR = re.compile(r"^\s*(?:#|--)\s*COMMAND\s*-{5,}\s*$")
_MAGIC = re.compile(r"^\s*(?:#|--)\s*MAGIC(?: |$)")
_MAGIC_LANGUAGE = re.compile(r"^%(?P<lang>\w+)")
_JUPYTER_CELL_MAGIC = re.compile(r"^\s*%%(?P<lang>\w+)")
# Languages a cell can be checked in; other magics (%md, %sh, %pip, %run, %scala, %r, %fs) are skipped.
_LANGUAGES = {"python": "python", "py": "python", "pyspark": "python", "sql": "sql", "sparksql": "sql"}


@dataclass
class Cell:
    """One notebook cell.

    Attributes:
        index: 1-based cell number in the notebook.
        language: ``python``, ``sql`` or ``other`` (markdown, shell, Scala, R, ``%run``...).
        first_line: line number (1-based) of the cell's first line in the file (or script).
        lines: the cell's code lines, magic prefixes removed; the magic command
            line itself is blank, so ``first_line + i`` is the file line of ``lines[i]``.

    """

    index: int
    language: str
    first_line: int
    lines: list[str] = field(default_factory=list)

    @property
    def last_line(self) -> int:
        """The file line of the cell's last line."""
        return self.first_line + len(self.lines) - 1

    @property
    def text(self) -> str:
        """The cell's code as one text."""
        return "\n".join(self.lines)


@dataclass
class Notebook:
    """A notebook reduced to what the linter needs.

    Attributes:
        cells: the cells in order.
        lines: the lines findings point at (the file's own lines for source
            notebooks, the script's lines for ``.ipynb``).
        is_notebook: False for a plain file that has no cell structure.

    """

    cells: list[Cell]
    lines: list[str]
    is_notebook: bool = True

    def module_text(self, language: str, skip: set[int] | None = None) -> str:
        """The text of every cell in ``language`` at its own lines, the rest blank.

        Args:
            language: ``python`` or ``sql``.
            skip: indexes of cells to leave blank (e.g. a cell with a syntax error).

        """
        out = [""] * len(self.lines)
        for cell in self.cells:
            if cell.language != language or (skip and cell.index in skip):
                continue
            for offset, line in enumerate(cell.lines):
                position = cell.first_line - 1 + offset
                if 0 <= position < len(out):
                    out[position] = line
        return "\n".join(out)

    def cell_at(self, line: int) -> Cell | None:
        """The cell holding file line ``line``."""
        for cell in self.cells:
            if cell.first_line <= line <= cell.last_line:
                return cell
        return None


def is_source_notebook(lines: list[str]) -> bool:
    """True for a Databricks source notebook (header line or COMMAND separators)."""
    head = lines[0].strip() if lines else ""
    if head in (PY_HEADER, SQL_HEADER):
        return True
    return any(_SEPARATOR.match(line) for line in lines)


def _strip_magic(line: str) -> str:
    """``# MAGIC SELECT 1`` -> ``SELECT 1``."""
    match = _MAGIC.match(line)
    return line[match.end():] if match else line


def _cell_language(raw: list[str], default: str) -> tuple[str, list[str]]:
    """The language of one source-notebook cell and its code lines (same count as ``raw``)."""
    code = [line for line in raw if line.strip()]
    if not code or not all(_MAGIC.match(line) for line in code):
        if default == "python":
            # Databricks runs Python cells under IPython: "%pip install x" and "!ls" lines are valid there.
            return default, ["" if line.startswith(("%", "!")) else line for line in raw]
        return default, list(raw)
    stripped = [_strip_magic(line) if _MAGIC.match(line) else "" for line in raw]
    first = next(i for i, line in enumerate(stripped) if line.strip())
    magic = _MAGIC_LANGUAGE.match(stripped[first].strip())
    if magic is None:
        return default, stripped  # MAGIC lines without a %command: same language as the notebook
    language = _LANGUAGES.get(magic.group("lang").lower(), "other")
    rest = stripped[first].strip()[magic.end():]
    stripped[first] = rest if language != "other" and rest.strip() else ""
    return language, stripped


def split_source(text: str, default: str) -> Notebook:
    """Split a Databricks source notebook (or a plain ``.py`` / ``.sql`` file) into cells.

    Args:
        text: the file's text.
        default: the notebook's language (``python`` for ``.py``, ``sql`` for ``.sql``).

    Returns:
        The cells with their file lines; a file with no notebook structure is
        one cell of ``default`` (``# MAGIC %sql`` blocks in it still become SQL cells).

    """
    lines = text.splitlines()
    notebook = is_source_notebook(lines)
    cells: list[Cell] = []
    start = 0
    boundaries = [i for i, line in enumerate(lines) if _SEPARATOR.match(line)] if notebook else []
    for end in [*boundaries, len(lines)]:
        raw = lines[start:end]
        if start == 0 and raw and raw[0].strip() in (PY_HEADER, SQL_HEADER):
            raw = ["", *raw[1:]]
        cells.extend(_split_magic_runs(raw, start + 1, default, len(cells), notebook))
        start = end + 1
    return Notebook(cells, lines, notebook)


def _split_magic_runs(raw: list[str], first_line: int, default: str, count: int, notebook: bool) -> list[Cell]:
    """One cell, or — outside a notebook — the ``# MAGIC %sql`` blocks of a plain file as cells of their own."""
    if notebook:
        language, code = _cell_language(raw, default)
        return [Cell(count + 1, language, first_line, code)]
    # A plain file: MAGIC blocks (e.g. an exported notebook without its header) are cells of their own.
    cells: list[Cell] = []
    own = [line if not _MAGIC.match(line) else "" for line in raw]
    cells.append(Cell(count + 1, default, first_line, own))
    block_start: int | None = None
    for i, line in enumerate([*raw, ""]):
        if i < len(raw) and _MAGIC.match(line):
            if block_start is None:
                block_start = i
            continue
        if block_start is not None:
            language, code = _cell_language(raw[block_start:i], default)
            if language != default:
                cells.append(Cell(count + len(cells) + 1, language, first_line + block_start, code))
            block_start = None
    return cells


def _ipynb_language(notebook: object) -> str:
    metadata = getattr(notebook, "metadata", {}) or {}
    databricks = metadata.get("application/vnd.databricks.v1+notebook") or {}
    language = str(databricks.get("language") or "").lower()
    if not language:
        info = metadata.get("language_info") or {}
        kernel = metadata.get("kernelspec") or {}
        language = str(info.get("name") or kernel.get("language") or "python").lower()
    return _LANGUAGES.get(language, "other")


def split_ipynb(text: str) -> Notebook:
    """Read a Jupyter / Databricks ``.ipynb`` notebook into cells laid out as a script.

    Raises:
        ValueError: the text is not a notebook ``nbformat`` can read.

    """
    import nbformat  # a runtime dependency; imported here so plain checks stay light

    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises json, validation and reader errors alike
        raise ValueError(f"not a readable .ipynb notebook ({type(exc).__name__}: {str(exc)[:120]})") from None
    default = _ipynb_language(notebook)
    lines: list[str] = []
    cells: list[Cell] = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source") or ""
        if isinstance(source, list):
            source = "".join(source)
        raw = source.splitlines()
        lines.append("# COMMAND ----------")
        first_line = len(lines) + 1
        language, code = _ipynb_cell_language(raw, default)
        cells.append(Cell(number, language, first_line, code))
        lines.extend(raw)
    return Notebook(cells, lines, True)


def _ipynb_cell_language(raw: list[str], default: str) -> tuple[str, list[str]]:
    """A Jupyter cell's language: ``%%sql`` / ``%sql`` first line, Databricks ``# MAGIC`` lines, else the default."""
    first = next((i for i, line in enumerate(raw) if line.strip()), None)
    if first is None:
        return default, list(raw)
    head = raw[first].strip()
    match = _JUPYTER_CELL_MAGIC.match(head) or _MAGIC_LANGUAGE.match(head)
    if match:
        language = _LANGUAGES.get(match.group("lang").lower(), "other")
        code = list(raw)
        code[first] = ""
        return language, code
    if _MAGIC.match(raw[first]):
        return _cell_language(raw, default)
    # IPython line magics / shell escapes inside a Python cell are not Python: blank them.
    if default == "python":
        return default, ["" if line.startswith(("%", "!")) else line for line in raw]
    return default, list(raw)
