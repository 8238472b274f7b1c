"""Spark tests: one local SparkSession for the whole run, skipped with the reason when Spark cannot run.

Every test in this folder is marked ``spark`` (deselect with ``-m "not spark"``).
They need Java 17 and ``pyspark>=4.2`` (Python streaming sources with
admission control); the Kafka-shaped source also needs ``pyarrow`` (Python
data sources exchange rows as Arrow batches). Nothing is downloaded: no Kafka
or Delta packages are asked of Spark.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SPARK_DIR = Path(__file__).resolve().parent


def spark_unavailable() -> str | None:
    """Why Spark cannot run here, or ``None`` when it can."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home and (Path(java_home) / "bin" / "java").exists() \
        else shutil.which("java")
    if not java:
        return "Java is not installed: Spark runs on the JVM (install Java 17 to run the Spark tests)"
    try:
        banner = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Java does not start ({exc}): Spark runs on the JVM"
    match = re.search(r'version "(\d+)(?:\.(\d+))?', banner)
    major = int(match.group(1)) if match else 0
    major = int(match.group(2)) if match and major == 1 else major  # "1.8.0" is Java 8
    if major < 17:
        return f"Java {major or '?'} found; Spark 4 needs Java 17 or later"
    try:
        import pyspark
    except ImportError:
        return "pyspark is not installed (pip install -e '.[test]')"
    major, minor = (int(p) for p in pyspark.__version__.split(".")[:2])
    if (major, minor) < (4, 2):
        return f"pyspark {pyspark.__version__} is too old: the local Kafka stand-in needs pyspark>=4.2"
    return None  # without pyarrow only the Kafka / Event Hubs / Kinesis modules skip (see harness.LocalSource)


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
