"""Run a generated declarative pipeline module (``from pyspark import pipelines as dp``) on local Spark.

Lakeflow Declarative Pipelines evaluate the module's dataset functions and run
one streaming flow per table; expectations (``dp.expect*``) exist only on
Databricks. This stand-in does the same on a small scale: a fake ``dp``
records the datasets and their expectations, ``_spark()`` returns a session
whose ``readStream`` maps Auto Loader and the pipeline's own tables to local
sources, and each table runs as its own ``availableNow`` query over the
harness's scenario (upstream datasets are evaluated inline rather than read
back from their tables). Expectations act as documented: ``warn`` keeps the
row, ``drop`` drops a row whose condition is not true, ``fail`` stops the
flow.

Checks: every table's flow runs; the quarantine split loses no row and puts
none in both tables; the stateful steps drop late rows, stay bounded and
deduplicate; a windowed Gold counts exactly the rows that passed.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyspark
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tests.spark.harness import (
    Check,
    LocalSource,
    Outcome,
    Shape,
    _check_windows,
    _constant,
    _dropped,
    _state_rows,
    load_module,
    scenario,
    seqs,
)
from tests.spark.local_edges import RecordedSource

RUN_TIMEOUT_S = 180


@dataclass
class Dataset:
    """One ``@dp.table`` or ``@dp.temporary_view``."""

    name: str
    kind: str
    function: Any
    expectations: list[tuple[str, str, str]] = field(default_factory=list)  # (name, condition, warn|drop|fail)


class FakePipelines(types.ModuleType):
    """The decorators of ``pyspark.pipelines`` (and Databricks' expectations), recording instead of running."""

    def __init__(self) -> None:
        super().__init__("pyspark.pipelines")
        self.datasets: dict[str, Dataset] = {}

    def _register(self, kind: str, name: str | None) -> Any:
        def decorate(function: Any) -> Any:
            key = name or function.__name__
            self.datasets[key] = Dataset(key, kind, function, list(getattr(function, "_expectations", [])))
            return function
        return decorate

    def table(self, name: str | None = None, **_: Any) -> Any:
        return self._register("table", name)

    def materialized_view(self, name: str | None = None, **_: Any) -> Any:
        return self._register("table", name)

    def temporary_view(self, name: str | None = None, **_: Any) -> Any:
        return self._register("view", name)

    @staticmethod
    def _expect(items: list[tuple[str, str, str]]) -> Any:
        def decorate(function: Any) -> Any:
            function._expectations = [*items, *getattr(function, "_expectations", [])]
            return function
        return decorate

    def expect(self, name: str, condition: str) -> Any:
        return self._expect([(name, condition, "warn")])

    def expect_or_drop(self, name: str, condition: str) -> Any:
        return self._expect([(name, condition, "drop")])

    def expect_or_fail(self, name: str, condition: str) -> Any:
        return self._expect([(name, condition, "fail")])

    def expect_all(self, rules: dict[str, str]) -> Any:
        return self._expect([(n, c, "warn") for n, c in rules.items()])

    def expect_all_or_drop(self, rules: dict[str, str]) -> Any:
        return self._expect([(n, c, "drop") for n, c in rules.items()])

    def expect_all_or_fail(self, rules: dict[str, str]) -> Any:
        return self._expect([(n, c, "fail") for n, c in rules.items()])


@contextmanager
def fake_pipelines(fake: FakePipelines) -> Any:
    """``from pyspark import pipelines as dp`` gets the fake for the duration of an import."""
    saved_module, saved_attr = sys.modules.get("pyspark.pipelines"), getattr(pyspark, "pipelines", None)
    sys.modules["pyspark.pipelines"] = fake
    pyspark.pipelines = fake  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if saved_module is None:
            sys.modules.pop("pyspark.pipelines", None)
        else:
            sys.modules["pyspark.pipelines"] = saved_module
        if saved_attr is None:
            delattr(pyspark, "pipelines")
        else:
            pyspark.pipelines = saved_attr  # type: ignore[attr-defined]


def load_declarative(path: Path) -> tuple[types.ModuleType, FakePipelines]:
    """Import a declarative module with the fake ``dp``."""
    fake = FakePipelines()
    with fake_pipelines(fake):
        module = load_module(path)
    return module, fake


def apply_expectations(df: DataFrame, expectations: list[tuple[str, str, str]]) -> DataFrame:
    """``drop`` keeps rows whose condition is true; ``fail`` raises on the first row that is not."""
    for name, condition, action in expectations:
        passed = F.coalesce(F.expr(condition), F.lit(False))
        if action == "drop":
            df = df.where(passed)
        elif action == "fail":
            df = df.where(F.when(passed, F.lit(True)).otherwise(F.raise_error(F.lit(f"expectation {name} failed"))))
    return df


class _Reader:
    def __init__(self, pipeline: LocalPipeline) -> None:
        self.pipeline, self.recorded = pipeline, RecordedSource()

    def format(self, name: str) -> _Reader:
        self.recorded.format = name
        return self

    def option(self, key: str, value: Any) -> _Reader:
        self.recorded.options[key] = str(value)
        return self

    def options(self, **options: Any) -> _Reader:
        for key, value in options.items():
            self.option(key, value)
        return self

    def schema(self, schema: Any) -> _Reader:
        return self

    def load(self, path: str | None = None) -> DataFrame:
        self.recorded.path = path
        return self.pipeline.source(self.recorded)

    def table(self, name: str) -> DataFrame:
        if name in self.pipeline.datasets:
            return self.pipeline.evaluate(name)
        self.recorded.table = name
        return self.pipeline.source(self.recorded)


class LocalPipeline:
    """The session a dataset function sees through ``_spark()``."""

    def __init__(self, spark: SparkSession, datasets: dict[str, Dataset], shape: Shape, waves: list[list[dict]],
                 folder: Path) -> None:
        self.spark, self.datasets, self.shape, self.waves, self.folder = spark, datasets, shape, waves, folder
        self.sources: dict[str, LocalSource] = {}

    @property
    def readStream(self) -> _Reader:  # noqa: N802 - SparkSession's name
        return _Reader(self)

    def __getattr__(self, name: str) -> Any:
        """Everything else (``createDataFrame``, ``conf``...) is the real session's."""
        return getattr(self.spark, name)

    def source(self, recorded: RecordedSource) -> DataFrame:
        key = recorded.format or recorded.table or "source"
        if key not in self.sources:
            malformed = 2 if recorded.format == "cloudFiles" else 0
            self.sources[key] = LocalSource(self.spark, recorded, self.shape, self.waves, self.folder / "source",
                                            malformed)
        return self.sources[key].stream(len(self.waves))

    def evaluate(self, name: str) -> DataFrame:
        dataset = self.datasets[name]
        return apply_expectations(dataset.function(), dataset.expectations)


def _shape(module: types.ModuleType, datasets: dict[str, Dataset]) -> Shape:
    code = "\n".join(inspect.getsource(d.function) for d in datasets.values())
    claims = ["watermark"] if "withWatermark" in code else []
    if "dropDuplicatesWithinWatermark" in code:
        claims.append("dedup")
    return Shape(
        id_col=_constant(module, "DEDUP_KEY", "ID_COLUMN", "ID_KEY", default="event_id"),
        time_col=_constant(module, "EVENT_TIME", default="event_time"),
        group_col=None, claims=claims, aggregates="groupBy(" in code, merges=False, dlq_table=None, target_table=None,
    )


def run_pipeline(spark: SparkSession, path: Path, workdir: Path, name: str) -> Outcome:
    """Run every table of the declarative module at ``path`` and check the pipeline's claims."""
    began = time.monotonic()
    module, fake = load_declarative(path)
    datasets = fake.datasets
    shape = _shape(module, datasets)
    outcome = Outcome(module=name, claims=[*shape.claims, "quarantine"])
    waves = scenario(shape, bad_rows=True)
    pipeline = LocalPipeline(spark, datasets, shape, waves, workdir)
    module._spark = lambda: pipeline  # the module's own accessor for the pipeline's session
    outputs: dict[str, DataFrame] = {}
    progress: dict[str, list[dict[str, Any]]] = {}
    errors = []
    previous = spark.conf.get("spark.sql.streaming.noDataMicroBatches.enabled", None)
    spark.conf.set("spark.sql.streaming.noDataMicroBatches.enabled", "false")
    try:
        for table in [d.name for d in datasets.values() if d.kind == "table"]:
            sink = workdir / "tables" / table
            query = (pipeline.evaluate(table).writeStream.format("parquet").outputMode("append")
                     .option("path", str(sink)).option("checkpointLocation", str(workdir / "checkpoints" / table))
                     .trigger(availableNow=True).start())
            try:
                if not query.awaitTermination(RUN_TIMEOUT_S):
                    query.stop()
                    errors.append(f"{table}: no end within {RUN_TIMEOUT_S} s")
            except Exception as exc:  # noqa: BLE001 - the flow's error is the finding
                errors.append(f"{table}: {str(exc).splitlines()[0][:400]}")
            progress[table] = [json.loads(p.json) for p in query.recentProgress]
            if not errors:
                outputs[table] = spark.read.parquet(str(sink))
    finally:
        spark.conf.set("spark.sql.streaming.noDataMicroBatches.enabled", previous or "true")
    outcome.progress = [p for items in progress.values() for p in items]
    outcome.checks.append(Check("runs", not errors, "; ".join(errors) or f"tables: {', '.join(progress)}"))
    if not errors:
        _check_pipeline(outcome, module, shape, waves, outputs, progress, pipeline)
    outcome.seconds = time.monotonic() - began
    return outcome


def _check_pipeline(outcome: Outcome, module: types.ModuleType, shape: Shape, waves: list[list[dict]],
                    outputs: dict[str, DataFrame], progress: dict[str, list[dict]], pipeline: LocalPipeline) -> None:
    rows = [r for wave in waves for r in wave]
    silver_name, quarantine_name = _constant(module, "SILVER_TABLE"), _constant(module, "QUARANTINE_TABLE")
    gold_name = _constant(module, "GOLD_TABLE")
    malformed = sum(s.malformed for s in pipeline.sources.values())
    bad = [r for r in rows if r[shape.time_col] is None]
    stateful = {name: items for name, items in progress.items() if any(p.get("stateOperators") for p in items)}
    # Late rows never reach Silver when a stateful step with the watermark sits before it.
    late = waves[4] if silver_name in stateful else []
    if silver_name in outputs and quarantine_name in outputs:
        silver = seqs(outputs[silver_name])
        quarantined = outputs[quarantine_name]
        quarantine_seqs = seqs(quarantined.select(F.col("payload")))
        both = sorted(set(silver) & set(quarantine_seqs))
        wanted_bad = len(bad) + malformed
        # Rows that fail a rule (here: no event time, or unparsable) must all land in quarantine, once.
        outcome.checks.append(Check(
            "quarantine-split", not both and quarantined.count() == wanted_bad and wanted_bad > 0,
            f"{quarantined.count()} rows quarantined of {wanted_bad} bad rows fed; in both tables: {both or 'none'}"))
        good = [r for r in rows if r[shape.time_col] is not None and r not in late]
        if "dedup" in shape.claims:
            ids = [r[0] for r in outputs[silver_name].select(shape.id_col).collect()]
            expected = {r[shape.id_col] for r in good}
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            outcome.checks.append(Check(
                "dedup-removes-duplicates", not repeated and set(ids) == expected,
                f"{len(ids)} silver rows for {len(expected)} ids expected; repeated {repeated or 'none'}, missing "
                f"{sorted(expected - set(ids)) or 'none'}, unexpected {sorted(set(ids) - expected) or 'none'}"))
        else:
            expected_seqs = {r["seq"] for r in good}
            outcome.checks.append(Check(
                "no-row-lost", set(silver) == expected_seqs and len(silver) == len(expected_seqs),
                f"{len(silver)} silver rows, {len(expected_seqs)} good rows fed"))
    for name, items in stateful.items():
        dropped = _dropped(items)
        late_rows = len(waves[4])
        exact = dropped == late_rows or shape.aggregates and name == gold_name
        outcome.checks.append(Check(f"{name}: watermark-drops-late-rows", 0 < dropped <= late_rows and exact,
                                    f"numRowsDroppedByWatermark {dropped}, late rows fed {late_rows}"))
        last = items[-1]
        bound = (len(waves[2]) + len(waves[3]) + 3) * max(1, len(last.get("stateOperators", [])))
        outcome.checks.append(Check(f"{name}: state-bounded", _state_rows(last) <= bound,
                                    f"state rows after the last batch {_state_rows(last)} (bound {bound})"))
    if gold_name in outputs:
        kept = [r for r in rows if r[shape.time_col] is not None and r not in waves[4]]
        _check_windows(outcome, outputs[gold_name], shape, kept, waves)
