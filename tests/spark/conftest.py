"""Spark tests: one local SparkSession for the whole run, skipped with the reason when Spark cannot run.

Every test in this folder is marked ``spark`` (deselect with ``-m "not spark"``).
They need Java 17, ``pyspark>=4.2`` (Python streaming sources with admission
control) and ``pyarrow`` (Python data sources exchange rows as Arrow batches);
nothing is downloaded: no Kafka or Delta packages are asked of Spark.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

SPARK_DIR = Path(__file__).resolve().parent


def spark_unavailable() -> str | None:
    """Why Spark cannot run here, or ``None`` when it can."""
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and (Path(java_home) / "bin" / "java").exists()):
        return "Java is not installed: Spark runs on the JVM (install Java 17 to run the Spark tests)"
    try:
        import pyspark
    except ImportError:
        return "pyspark is not installed (pip install -e '.[test]')"
    major, minor = (int(p) for p in pyspark.__version__.split(".")[:2])
    if (major, minor) < (4, 2):
        return f"pyspark {pyspark.__version__} is too old: the local Kafka stand-in needs pyspark>=4.2"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return "pyarrow is not installed: Python streaming data sources need it"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spark: runs Structured Streaming on a local Spark (needs Java 17)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = spark_unavailable()
    for item in items:
        if SPARK_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.spark)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """The one local SparkSession of the test run (``local[2]``, no UI, two shuffle partitions)."""
    reason = spark_unavailable()
    if reason:
        pytest.skip(reason)
    from tests.spark.local_edges import local_spark

    session = local_spark()
    yield session
    session.stop()
