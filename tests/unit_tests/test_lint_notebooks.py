"""Notebooks checked cell by cell: Databricks source notebooks (.py/.sql) and Jupyter .ipynb."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from tools.lint import check_file, check_text
from tools.lint.cli import main

SQL_NOTEBOOK = """-- Databricks notebook source
CREATE OR REFRESH STREAMING TABLE orders_silver (
  CONSTRAINT `order id present` EXPECT (order_id IS NOT NULL) ON VIOLATION DROP ROW
)
AS SELECT * FROM STREAM(orders_bronze)

-- COMMAND ----------

CREATE OR REFRESH MATERIALIZED VIEW orders_by_customer
AS SELECT o.customer_id, count(*) AS orders
FROM orders_silver o JOIN customers c ON o.customer_id = c.id
GROUP BY o.customer_id

-- COMMAND ----------

-- MAGIC %python
-- MAGIC totals = spark.readStream.table("orders_silver").groupBy("customer_id").count()
"""


def found(result) -> set[tuple[str, str, int | None]]:
    return {(f.rule, f.status, f.line) for f in result.findings if f.status != "PASS"}


def test_sql_cells_are_statements_without_semicolons():
    result = check_text(SQL_NOTEBOOK, "sql")
    assert result.error is None and not result.warnings
    rules = found(result)
    # The STREAM(...) of the first cell does not make the next cell's batch GROUP BY / JOIN streaming.
    assert not {r for r in rules if r[0] in ("SE101", "SE102") and r[2] in (10, 11, 12)}
    assert ("SE601", "PARTIAL", 9) in rules, "the Gold view after the first table is still checked"
    passes = {(f.rule, f.line) for f in result.findings if f.status == "PASS"}
    assert ("SE601", 2) in passes, "a backtick-quoted constraint name counts as an expectation"


def test_magic_python_cell_in_a_sql_notebook_is_python_at_its_own_line():
    result = check_text(SQL_NOTEBOOK, "sql")
    assert ("SE101", "FAIL", 17) in found(result)


def test_magic_sql_cell_in_a_python_notebook_and_ipython_lines():
    source = (
        "# Databricks notebook source\n"
        "%pip install faker\n"
        "events = spark.readStream.table('e')\n"
        "\n# COMMAND ----------\n\n"
        "# MAGIC %sql\n"
        "# MAGIC CREATE OR REFRESH STREAMING TABLE per_user AS\n"
        "# MAGIC SELECT user_id, count(*) FROM STREAM(e)\n"
        "# MAGIC GROUP BY user_id\n"
    )
    result = check_text(source, "python")
    assert result.error is None and not result.warnings, "a %pip line is valid in a Databricks Python cell"
    assert ("SE101", "FAIL", 10) in found(result)


def test_a_broken_cell_is_reported_and_the_other_cells_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture):
    notebook = tmp_path / "nb.py"
    notebook.write_text(
        "# Databricks notebook source\n"
        "df = spark.readStream.table('e')\n"
        "\n# COMMAND ----------\n\n"
        "x = (1,\n"
        "\n# COMMAND ----------\n\n"
        "df.groupBy('user_id').count().writeStream.toTable('t')\n",
        encoding="utf-8",
    )
    result = check_file(notebook)
    assert result.error is None
    assert len(result.warnings) == 1 and "cell 2 (lines 5-7)" in result.warnings[0]
    assert {"SE101", "SE201"} <= {f.rule for f in result.findings if f.status == "FAIL"}
    assert main([str(notebook)]) == 1, "a partly analysed notebook exits by its FAILs"
    assert "WARNING cell 2" in capsys.readouterr().out


def test_a_notebook_whose_only_code_does_not_parse_is_not_analysed(tmp_path: Path):
    notebook = tmp_path / "nb.py"
    notebook.write_text("# Databricks notebook source\nx = (1,\n", encoding="utf-8")
    result = check_file(notebook)
    assert result.error and "syntax error" in result.error
    assert main([str(notebook), "--format", "json"]) == 2


def test_ipynb_cells_in_their_language_with_cell_numbers(tmp_path: Path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("!pip install x\nevents = spark.readStream.table('e')"),
        nbformat.v4.new_code_cell("events.groupBy('user_id').count()"),
        nbformat.v4.new_code_cell("%%sql\nSELECT user_id, count(*) FROM STREAM(e) GROUP BY user_id"),
    ]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    result = check_file(path)
    assert result.error is None and not result.warnings
    aggregations = {f.line: f.message[:8] for f in result.findings if f.rule == "SE101" and f.status == "FAIL"}
    # Lines of the code cells laid out as a script, each cell after a "# COMMAND ----------" line.
    assert aggregations == {5: "[cell 3]", 8: "[cell 4]"}


def test_a_file_that_is_not_a_notebook_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture):
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps({"cells": "nope"}), encoding="utf-8")
    assert main([str(path)]) == 2
    assert "not a readable .ipynb notebook" in capsys.readouterr().out
    assert main([str(path), "--allow-unanalysed"]) == 0
