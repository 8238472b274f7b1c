"""The common shape of every generated PySpark module (see ``CONVENTIONS.md``).

A stream module is: a docstring, imports, the user's values as module-level
constants, then ``read_stream`` (source edge), ``transform`` (pure),
optionally ``write_batch`` (idempotent foreachBatch sink), ``start`` (sink
edge) and ``main``. These helpers write the parts that never change, so each
generator only writes what is specific to its task.
"""

from __future__ import annotations

from tools.artifacts.base import comment_safe

STREAM_IMPORTS = """from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery"""

MERGE_IMPORTS = STREAM_IMPORTS.replace("from pyspark.sql import DataFrame, SparkSession",
                                      "from pyspark.sql import DataFrame, SparkSession, Window")
# delta-spark is needed only where a MERGE runs: importing the module must work without it.
DELTA_IMPORT = "from delta.tables import DeltaTable  # delta-spark: only the MERGE needs it"

DBUTILS_HELPER = '''def _dbutils(spark: SparkSession) -> Any:
    """Databricks utilities, in a notebook or a Python file run as a job task."""
    from pyspark.dbutils import DBUtils  # only on Databricks Runtime: keep it inside the function

    return DBUtils(spark)'''

CONVENTION_NOTE = ("Convention (CONVENTIONS.md): read_stream() is the source edge, transform() is pure, "
                   "start() is the sink edge; importing this module starts nothing.")


def trigger_arg(interval: str = "TRIGGER_INTERVAL") -> str:
    """The ``.trigger(...)`` argument for the thread's compute: ``availableNow`` on serverless, else processingTime.

    Serverless jobs run Structured Streaming with ``availableNow`` only (no processingTime, no continuous), so
    a serverless stream is a scheduled job that drains what arrived and stops.
    """
    from tools.design import current

    return "availableNow=True" if current().serverless else f"processingTime={interval}"


def compute_note() -> str:
    """One docstring line saying what the compute choice implies for this module."""
    from tools.design import current

    design = current()
    if design.serverless:
        return ("Compute: serverless — the trigger is availableNow (schedule the job; it drains the backlog and "
                "stops), no spark.conf state-store settings, no persist(); credentials through Unity Catalog.")
    runtime = f" ({design.runtime})" if design.runtime else ""
    return (f"Compute: classic job cluster{runtime} — processingTime trigger on an always-on (continuous) job, or "
            "--available-now for a scheduled run (drain, then stop); state-store settings are set before the first "
            "start.")


AVAILABLE_NOW_DOC = ("available_now (the job's --available-now) drains what has arrived, then stops: a scheduled or\n"
                     "    file-arrival job. Otherwise the query runs on its processingTime trigger until a continuous\n"
                     "    job stops it.")


def start_block(doc: str, chain: list[str], terminal: str, interval: str = "TRIGGER_INTERVAL",
                always_available_now: bool = False) -> str:
    """The sink edge ``start(df, checkpoint=CHECKPOINT, available_now=False)`` for a writer chain.

    The trigger is chosen per run, not fixed in the code: a scheduled (bounded) job passes ``--available-now``
    and the query stops after the backlog, a continuous classic job keeps ``processingTime``. Serverless (or a
    stream designed as availableNow) always drains and stops.

    Args:
        doc: the first docstring line.
        chain: the writer's calls after ``df.writeStream`` (``.format("delta")``, ``.queryName(QUERY_NAME)``...).
        terminal: the call that starts the query (``.toTable(TARGET_TABLE)`` or ``.start()``).
        interval: the processingTime interval expression (a constant name or a literal).
        always_available_now: the query is bounded on every run.
    """
    from tools.design import current

    first, rest = chain[0], chain[1:]
    lines = "".join(f"\n        {call}" for call in rest)
    if always_available_now or current().serverless:
        why = "serverless runs availableNow only" if current().serverless else "this stream is designed as a bounded run"
        trigger = (f"    # {why}: every run drains what has arrived, then stops (schedule the job).\n"
                   f"    return writer.trigger(availableNow=True){terminal}")
        note = ("Every run drains what has arrived and stops, whatever available_now says (the job is\n"
                "    scheduled).")
    else:
        trigger = ("    writer = writer.trigger(availableNow=True) if available_now else "
                   f"writer.trigger(processingTime={interval})\n    return writer{terminal}")
        note = AVAILABLE_NOW_DOC
    return (f"def start(df: DataFrame, checkpoint: str = CHECKPOINT, available_now: bool = False) -> StreamingQuery:\n"
            f'    """{doc}\n\n    {note}\n    """\n'
            f"    writer = (\n        df.writeStream{first}{lines}\n    )\n{trigger}")


JOB_MAIN_DOC = ("Run as a job task: python {file} [--catalog C --schema S --checkpoint-root R] [--available-now].")


def job_main(file: str, tables: list[str], paths: list[str], before: str = "",
             call: str = "start(transform(read_stream(spark)), CHECKPOINT, available_now=args.available_now)") -> str:
    """``main(argv)`` taking the bundle's job parameters, and the ``__main__`` guard.

    The same parameters every generated bundle passes (``bundles.TARGET_PARAMETERS`` and ``--available-now``):
    the target's namespace moves the tables this module writes (``in_target``) and its checkpoint paths
    (``checkpoint_in_target``), so a dev run never writes a production table or opens a production checkpoint;
    ``--available-now`` makes the run bounded. The module must carry ``bundles.TARGET_HELPERS``.

    Args:
        file: the module's file name (for the usage line).
        tables: constants naming tables this module writes.
        paths: constants naming checkpoint (or schema-location) paths.
        before: lines run after the session exists, before the query starts (listeners, state-store settings).
        call: the expression that starts the query.
    """
    moved = [*tables, *paths]
    lines = [f"    global {', '.join(moved)}",
             "    parser = add_target_arguments(argparse.ArgumentParser(description=__doc__))",
             '    parser.add_argument("--available-now", action="store_true", help="drain the backlog and stop '
             '(bounded run)")',
             "    args = parser.parse_args(argv)"]
    lines += [f"    {name} = in_target({name}, args.catalog, args.schema)" for name in tables]
    lines += [f"    {name} = checkpoint_in_target({name}, args.checkpoint_root)" for name in paths]
    lines.append("    spark = SparkSession.builder.getOrCreate()")
    if before.strip():
        lines.append(before.rstrip("\n"))
    lines += [f"    query = {call}", "    query.awaitTermination()"]
    doc = (f'    """{JOB_MAIN_DOC.format(file=file)}\n\n'
           "    A bundle target passes its namespace: a dev run writes its own tables and checkpoints. --available-now\n"
           "    drains what has arrived and stops (scheduled and file-arrival jobs); without it a classic job's query\n"
           '    runs until the continuous job stops it.\n    """')
    return ("def main(argv: list[str] | None = None) -> None:\n" + doc + "\n" + "\n".join(lines) +
            '\n\n\nif __name__ == "__main__":\n    main()\n')


def target_section(table: str, checkpoint: str) -> tuple[str, str]:
    """The production-namespace constants and the target helpers a ``job_main`` module carries.

    Args:
        table: the module's main output table (its catalog and schema are production's).
        checkpoint: the module's checkpoint (its folder is the production checkpoint root).
    """
    from tools.artifacts.bundles import TARGET_HELPERS, Targets, common_root, target_constants

    prod = Targets.for_output(table, common_root([checkpoint])).prod
    return (constants(target_constants(prod), "production namespace (a bundle target passes its own)"),
            section("deployment target") + "\n" + TARGET_HELPERS)


def docstring_safe(text: str) -> str:
    """One line that cannot end the docstring or start an escape sequence (user values go in docstrings)."""
    return comment_safe(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def header(summary: str, command: str, lines: list[str], imports: str = STREAM_IMPORTS,
           extra_imports: tuple[str, ...] = ()) -> str:
    """The module docstring and imports.

    Args:
        summary: the first docstring line.
        command: the ``*command`` that generated the module.
        lines: further docstring lines (how to run it, what it guarantees).
        imports: the import block.
        extra_imports: more import lines (``from typing import Any`` ...), added first.
    """
    body = "\n".join(docstring_safe(line) for line in lines)
    doc = f'"""{docstring_safe(summary)}\n\nGenerated by Streaming Engineer (`*{command}`).\n{body}\n"""'
    head = ["from __future__ import annotations", ""]
    if extra_imports:
        # isort order: "import x" lines before "from x import y" lines, each alphabetical.
        head += [*sorted(extra_imports, key=lambda line: (line.startswith("from "), line)), ""]
    return "\n".join([doc, "", *head, imports, ""])


def constants(rows: list[tuple[str, str, str]], title: str = "the user's values") -> str:
    """A titled block of ``NAME = literal`` lines, each with its comment on the line above."""
    out = [section(title)]
    for name, value, note in rows:
        if note:
            out.append(f"# {comment_safe(note)}")
        out.append(f"{name} = {value}")
    return "\n".join(out)


def section(title: str) -> str:
    """A comment rule that names a part of the module."""
    return f"# -- {title} " + "-" * max(4, 76 - len(title))


def main_block(body: str = "    query = start(transform(read_stream(spark)))\n    query.awaitTermination()",
               doc: str = "Start the stream and wait; the job's retry policy restarts it from the checkpoint.") -> str:
    """``main()`` and the ``__main__`` guard."""
    return (f'def main() -> None:\n    """{doc}"""\n    spark = SparkSession.builder.getOrCreate()\n{body}\n\n\n'
            'if __name__ == "__main__":\n    main()\n')


def join(*parts: str) -> str:
    """Module parts separated by two blank lines, ending with one newline."""
    return "\n\n\n".join(p.strip("\n") for p in parts if p and p.strip()) + "\n"
