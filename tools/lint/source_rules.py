"""Rules on a streaming source's options, whatever language declared them.

A Kafka reader in PySpark, a ``read_kafka(...)`` in SQL and a connector option
map in JSON all reduce to a ``SourceSpec``: the source kind, its options (keys
compared case-insensitively, as Spark does) and where they were written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from tools.lint.catalog import make_finding
from tools.lint.model import Finding

SourceKind = Literal["kafka", "eventhubs", "kinesis", "autoloader", "file", "other"]
Context = Literal["code", "dlt", "sql", "config"]

_FILE_FORMATS = frozenset({"json", "csv", "parquet", "orc", "text", "xml", "avro", "binaryfile"})
_FIXED_SCHEMA_FORMATS = frozenset({"binaryfile", "text"})  # their schema is fixed: nothing to infer or track
# Kafka client settings the Spark source only passes on with the "kafka." prefix; without it the setting is ignored.
_KAFKA_CLIENT_KEYS = frozenset({"bootstrap.servers", "security.protocol", "sasl.mechanism", "sasl.jaas.config",
                                "ssl.truststore.location", "ssl.truststore.password", "ssl.keystore.location",
                                "ssl.keystore.password", "ssl.endpoint.identification.algorithm", "group.id",
                                "client.id", "session.timeout.ms", "request.timeout.ms"})
_KAFKA_CERTAIN_KEYS = frozenset({"bootstrap.servers", "security.protocol", "sasl.mechanism", "sasl.jaas.config"})
# Settings the Kafka source never uses (they name consumer behaviour that Spark manages itself).
_KAFKA_UNUSED_SOURCE_KEYS = {
    "topic": "topic is a sink option; a source needs subscribe / subscribePattern / assign",
    "auto.offset.reset": "Spark manages offsets; use startingOffsets",
    "kafka.auto.offset.reset": "Spark manages offsets; use startingOffsets",
    "enable.auto.commit": "Spark manages offsets in the checkpoint; commits are never made",
    "kafka.enable.auto.commit": "Spark manages offsets in the checkpoint; commits are never made",
    "checkpointlocation": "checkpointLocation is a writeStream option; on the reader it is ignored",
}
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*(?::\d+)?$")  # placeholders and {{secrets/..}} are not hosts
_PRIVATE_DNS = re.compile(r"\.(?:internal|local|lan|svc|corp|intranet|home|localdomain|cluster\.local)(?::\d+)?$", re.I)
# Loopback, private networks and single-label names (docker-compose services): not "remote" for SE807.
_LOCAL_HOSTS = re.compile(
    r"^(?:localhost|127\.\d+\.\d+\.\d+|0\.0\.0\.0|\[::1\]|10\.\d+\.\d+\.\d+|192\.168\.\d+\.\d+"
    r"|172\.(?:1[6-9]|2\d|3[01])\.\d+\.\d+|[a-z0-9_-]+)(?::\d+)?$",
    re.I,
)
_MALFORMED_PRONE = frozenset({"json", "csv", "xml"})


@dataclass
class OptionValue:
    """One option as written.

    Attributes:
        value: the literal value as text, or ``None`` when it is computed.
        line: where the option is written.
        evidence: the source line.
        fragments: the constant parts of a computed string (an f-string's text
            without its fields), when the value is not a literal.

    """

    value: str | None
    line: int | None
    evidence: str
    fragments: str | None = None


@dataclass
class SourceSpec:
    """A streaming source declaration reduced to what the rules need.

    Attributes:
        kind: the connector family.
        line: where the source is declared (its format / function).
        evidence: the source line of the declaration.
        context: ``code`` (plain PySpark), ``dlt`` (declarative pipeline code,
            where checkpoints and schema locations are managed), ``sql`` or
            ``config`` (an option map seen without its reader).
        options: options by lower-cased key.
        opaque: some options could not be read (``**opts`` from elsewhere),
            so rules about missing options stay silent.
        schema_given: an explicit schema was passed (``None``: unknown).
        file_format: the underlying file format (``cloudFiles.format`` or the
            file source's format), lower case.
        databricks: the file is certainly Databricks code (a source notebook,
            ``dbutils``, ``/Volumes/``), where the Kafka client is shaded.

    """

    kind: SourceKind
    line: int | None
    evidence: str
    context: Context
    options: dict[str, OptionValue] = field(default_factory=dict)
    opaque: bool = False
    schema_given: bool | None = False
    file_format: str | None = None
    databricks: bool = False

    def get(self, *keys: str) -> OptionValue | None:
        """The first option present among ``keys`` (lower case, with or without ``cloudFiles.``)."""
        for key in keys:
            for candidate in (key, f"cloudfiles.{key}"):
                if candidate in self.options:
                    return self.options[candidate]
        return None

    def value(self, *keys: str) -> str | None:
        """The literal value (lower case) of the first present key, else ``None``."""
        option = self.get(*keys)
        return option.value.strip().lower() if option and option.value is not None else None


def source_kind(fmt: str | None) -> SourceKind:
    """Map a ``format(...)`` value to a connector family."""
    fmt = (fmt or "").strip().lower()
    if fmt == "kafka" or fmt.endswith("kafkasourceprovider"):
        return "kafka"
    if fmt in ("eventhubs", "org.apache.spark.sql.eventhubs.eventhubssourceprovider"):
        return "eventhubs"
    if fmt == "kinesis":
        return "kinesis"
    if fmt == "cloudfiles":
        return "autoloader"
    if fmt in _FILE_FORMATS:
        return "file"
    return "other"


def check_source(spec: SourceSpec) -> list[Finding]:
    """All source-option findings for one streaming source."""
    if spec.kind in ("kafka", "eventhubs", "kinesis"):
        return _check_bus(spec)
    if spec.kind in ("autoloader", "file"):
        return _check_files(spec)
    return []


def _check_kafka_options(spec: SourceSpec) -> list[Finding]:
    """SE211 (options the Kafka source ignores), SE806 (unshaded JAAS module), SE807 (PLAINTEXT to a remote broker)."""
    findings: list[Finding] = []
    for key, option in spec.options.items():
        if key in _KAFKA_CLIENT_KEYS:
            status = "FAIL" if key in _KAFKA_CERTAIN_KEYS else "PARTIAL"
            findings.append(make_finding(
                "SE211", status, option.line,
                f"Kafka option '{key}' has no 'kafka.' prefix, so the Spark Kafka source ignores it "
                f"(it needs 'kafka.{key}').", option.evidence,
            ))
        elif key in _KAFKA_UNUSED_SOURCE_KEYS and spec.context != "config":
            findings.append(make_finding(
                "SE211", "PARTIAL", option.line,
                f"Option '{key}' is ignored by the Kafka source: {_KAFKA_UNUSED_SOURCE_KEYS[key]}.", option.evidence,
            ))
    jaas = spec.get("kafka.sasl.jaas.config")
    jaas_text = (jaas.value or jaas.fragments or "") if jaas is not None else ""
    if spec.databricks and jaas is not None and re.match(r"\s*org\.apache\.kafka\.", jaas_text):
        findings.append(make_finding(
            "SE806", "FAIL", jaas.line,
            "The JAAS config names org.apache.kafka...LoginModule, but the Kafka client on Databricks is shaded "
            "(kafkashaded.org.apache.kafka...): the login module is not found.", jaas.evidence,
        ))
    servers = spec.get("kafka.bootstrap.servers")
    hosts = [h.strip() for h in (servers.value or "").split(",") if h.strip()] if servers else []
    remote = [h for h in hosts if _HOST.match(h) and not _LOCAL_HOSTS.match(h) and not _PRIVATE_DNS.search(h)]
    protocol = spec.get("kafka.security.protocol")
    if remote and protocol is not None and (protocol.value or "").strip().upper() == "PLAINTEXT":
        findings.append(make_finding(
            "SE807", "FAIL", protocol.line,
            f"security.protocol PLAINTEXT to remote broker {remote[0]}: data and credentials travel unencrypted.",
            protocol.evidence,
        ))
    elif remote and protocol is None and not spec.opaque and spec.get("security.protocol") is None:
        findings.append(make_finding(
            "SE807", "PARTIAL", servers.line if servers else spec.line,
            f"No kafka.security.protocol for remote broker {remote[0]}: the client defaults to PLAINTEXT.",
            servers.evidence if servers else spec.evidence,
        ))
    return findings


def _check_bus(spec: SourceSpec) -> list[Finding]:
    findings: list[Finding] = _check_kafka_options(spec) if spec.kind == "kafka" else []
    start_keys = {
        "kafka": ("startingoffsets", "startingtimestamp", "startingoffsetsbytimestamp"),
        "eventhubs": ("eventhubs.startingposition", "eventhubs.startingpositions"),
        "kinesis": ("initialposition",),
    }[spec.kind]
    rate_keys = {"kafka": ("maxoffsetspertrigger",), "eventhubs": ("maxeventspertrigger",), "kinesis": ()}[spec.kind]
    start = spec.get(*start_keys)
    rate = spec.get(*rate_keys) if rate_keys else None
    name = {"kafka": "Kafka", "eventhubs": "Event Hubs", "kinesis": "Kinesis"}[spec.kind]
    start_option = {"kafka": "startingOffsets", "eventhubs": "eventhubs.startingPosition",
                    "kinesis": "initialPosition"}[spec.kind]
    rate_option = {"kafka": "maxOffsetsPerTrigger", "eventhubs": "maxEventsPerTrigger"}.get(spec.kind, "")
    if start is None and not spec.opaque:
        findings.append(make_finding(
            "SE205", "PARTIAL", spec.line,
            f"{name} source has no explicit starting position ({start_option}); a new checkpoint starts at latest.",
            spec.evidence,
        ))
    if spec.kind == "kafka" and start is not None and spec.value("startingoffsets") == "earliest":
        if rate is not None:
            findings.append(make_finding(
                "SE206", "PASS", start.line,
                "startingOffsets=earliest is capped by maxOffsetsPerTrigger.", start.evidence,
            ))
        elif not spec.opaque:
            findings.append(make_finding(
                "SE206", "REVIEW", start.line,
                "startingOffsets=earliest replays the topic's whole retention on the first run or after a "
                "checkpoint reset, with no maxOffsetsPerTrigger to bound the batch.",
                start.evidence,
            ))
    data_loss = spec.get("failondataloss")
    if spec.kind == "kafka" and data_loss is not None and spec.value("failondataloss") == "false":
        findings.append(make_finding(
            "SE207", "PARTIAL", data_loss.line,
            "failOnDataLoss=false: offsets lost to retention or deleted topics are skipped silently.",
            data_loss.evidence,
        ))
    if rate_keys:
        if rate is not None:
            findings.append(make_finding("SE401", "PASS", rate.line, f"{name} source is rate-limited.", rate.evidence))
        elif not spec.opaque:
            findings.append(make_finding(
                "SE401", "PARTIAL", spec.line,
                f"{name} source has no {rate_option}: one micro-batch can take the whole backlog.",
                spec.evidence,
            ))
    return findings


def _check_files(spec: SourceSpec) -> list[Finding]:
    findings: list[Finding] = []
    auto = spec.kind == "autoloader"
    inferring = spec.schema_given is False
    fmt = spec.file_format or ""
    fixed_schema = fmt in _FIXED_SCHEMA_FORMATS
    if auto and spec.get("schemalocation") is None and not spec.opaque and not spec.schema_given and not fixed_schema:
        if spec.context == "code":
            findings.append(make_finding(
                "SE501", "FAIL", spec.line,
                "Auto Loader infers the schema but has no cloudFiles.schemaLocation.", spec.evidence,
            ))
        elif spec.context == "config":
            findings.append(make_finding(
                "SE501", "REVIEW", spec.line,
                "This Auto Loader option map has no cloudFiles.schemaLocation; the reader that uses it must set "
                "one (declarative pipelines manage it).",
                spec.evidence,
            ))
    evolution = spec.get("schemaevolutionmode")
    if auto and evolution is not None and spec.value("schemaevolutionmode") == "none":
        infer_types = spec.value("infercolumntypes") == "true"
        if inferring or infer_types:
            findings.append(make_finding(
                "SE502", "PARTIAL", evolution.line,
                "schemaEvolutionMode is 'none' while the schema is inferred: new columns are dropped silently.",
                evolution.evidence,
            ))
    mode = spec.get("mode")
    rescue = spec.get("rescueddatacolumn", "badrecordspath", "columnnameofcorruptrecord")
    rescue_mode = spec.value("schemaevolutionmode") == "rescue"
    if mode is not None and spec.value("mode") == "dropmalformed":
        findings.append(make_finding(
            "SE503", "PARTIAL", mode.line, "mode=DROPMALFORMED drops malformed records without a trace.", mode.evidence,
        ))
    elif (
        spec.schema_given
        and rescue is None
        and not rescue_mode
        and not spec.opaque
        and (auto and fmt not in ("binaryfile", "text") or fmt in _MALFORMED_PRONE)
    ):
        findings.append(make_finding(
            "SE503", "PARTIAL", spec.line,
            "Explicit schema with no rescuedDataColumn / badRecordsPath: values that do not fit the schema "
            "become null and are lost.",
            spec.evidence,
        ))
    rate = spec.get("maxfilespertrigger", "maxbytespertrigger")
    if rate is not None:
        findings.append(make_finding("SE402", "PASS", rate.line, "File source is rate-limited.", rate.evidence))
    elif not spec.opaque and not auto:  # Auto Loader's default of 1000 files per batch is a cap
        findings.append(make_finding(
            "SE402", "PARTIAL", spec.line,
            "File stream has no maxFilesPerTrigger: the first batch lists and reads every file.",
            spec.evidence,
        ))
    return findings
