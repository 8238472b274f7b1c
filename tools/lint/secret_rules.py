"""Text-level rules for plaintext credentials (SE801-SE805).

They run on raw lines, for every file type, so they still work when a file
does not parse. A value that is a reference or a placeholder (``{{secrets/..}}``,
``${var}``, ``<password>``, an f-string field) is not a secret. Evidence never
contains the secret itself: the value is replaced by ``****``.
"""

from __future__ import annotations

import re

from tools.lint.catalog import make_finding
from tools.lint.model import Finding

_JAAS_PASSWORD = re.compile(r"""password\s*=\s*\\?(["'])(?P<value>[^"'\\\n]+)\\?\1""", re.IGNORECASE)
_SAS_KEY = re.compile(r"SharedAccessKey\s*=\s*(?P<value>[^;\"'\s]+)", re.IGNORECASE)
_AWS_KEY_ID = re.compile(r"\b(?P<value>(?:AKIA|ASIA)[0-9A-Z]{16})\b")
_AWS_SECRET = re.compile(
    r"""(?i)secret[_-]?(?:access[_-]?)?key["'`]?\s*(?:=>|[:=,])\s*["']?(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"""
)
_DATABRICKS_TOKEN = re.compile(r"\b(?P<value>dapi[0-9a-f]{32}(?:-\d+)?)\b")
# A key that names a credential, then a quoted literal: Python kwargs and
# assignments, .option("...password", "..."), JSON, YAML and SQL "=>" options.
_SECRET_WORD = (
    r"(?:pass(?:word|wd)|pwd|secret(?:[_-]?(?:access[_-]?)?key)?|token"
    r"|api[_-]?key|account[_-]?key|sas[_-]?key|private[_-]?key)"
)
# A comma separates key and value only in a call (".option('password', 'x')"): the key is then quoted.
# An unquoted name before a comma is a variable in a list or dict literal ("pat_token, 'Content-type'").
_KEYED_QUOTED = re.compile(
    r"""(?:(?P<q>["'`])(?P<qkey>[\w.\-]*""" + _SECRET_WORD + r""")(?P=q)\s*(?:=>|=(?!=)|:|,)"""
    r"""|(?<![\w.])(?P<key>[\w.\-]*""" + _SECRET_WORD + r""")\s*(?:=>|=(?!=)|:))"""
    r"""\s*(?P<vq>["'])(?P<value>[^"'\n]*)(?P=vq)""",
    re.IGNORECASE,
)
# YAML's unquoted form: "password: s3cr3t".
_KEYED_BARE_YAML = re.compile(
    r"""^\s*(?:-\s+)?["']?(?P<key>[\w.\-]*""" + _SECRET_WORD + r""")["']?\s*:\s+(?P<value>[^\s#"'{\[&*!|>][^\s#]*)\s*(?:#.*)?$""",
    re.IGNORECASE,
)
_REFERENCE_HINTS = ("dbutils.secrets.get", "{{secrets/", "secret(", "${secrets.", "secretscope", "secret_scope")
_PLACEHOLDERS = frozenset({
    "password", "changeme", "change-me", "change_me", "replace-me", "replace_me", "redacted", "none", "null",
    "todo", "tbd", "true", "false", "secret", "token", "your-password", "your_password", "xxx", "dummy",
    "example", "placeholder",
})
_PLACEHOLDER_SHAPES = re.compile(r"^(?:<.*>|\*+|x+|\.+|\$\{.*\}|\$\{\{.*\}\}|\{\{.*\}\}|\$[A-Z_][A-Z0-9_]*|%\(.*\)s)$", re.I)


_TRIGGER_WORDS = ("pass", "pwd", "secret", "token", "key", "akia", "asia", "dapi")
"""Every credential pattern needs one of these words nearby: a cheap pre-filter for most lines."""


def _is_placeholder(value: str) -> bool:
    """True when a value is a reference, template field or obvious dummy."""
    value = value.strip()
    if len(value) < 3 or value.lower() in _PLACEHOLDERS:
        return True
    if _PLACEHOLDER_SHAPES.match(value):
        return True
    # f-string / str.format / template fields and secret references.
    return "{" in value or "secrets/" in value or value.startswith("$")


def _redact(line: str, start: int, end: int) -> str:
    return (line[:start] + "****" + line[end:]).strip()


def _scan_line(line: str, is_yaml: bool, jaas_context: bool) -> list[tuple[str, str, int, int]]:
    """All credential matches in one line as (rule, kind, value start, value end)."""
    hits: list[tuple[str, str, int, int]] = []
    taken: list[tuple[int, int]] = []

    def add(rule: str, kind: str, match: re.Match[str]) -> None:
        start, end = match.span("value")
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            return  # one secret, one finding: the most specific rule wins
        taken.append((start, end))
        hits.append((rule, kind, start, end))

    if jaas_context:
        for m in _JAAS_PASSWORD.finditer(line):
            if not _is_placeholder(m.group("value")):
                add("SE801", "password in a JAAS config", m)
    for m in _SAS_KEY.finditer(line):
        if not _is_placeholder(m.group("value")):
            add("SE802", "SharedAccessKey", m)
    for m in _AWS_KEY_ID.finditer(line):
        add("SE803", "AWS access key id", m)
    for m in _AWS_SECRET.finditer(line):
        add("SE803", "AWS secret access key", m)
    for m in _DATABRICKS_TOKEN.finditer(line):
        add("SE804", "Databricks token", m)
    for m in _KEYED_QUOTED.finditer(line):
        if not _is_placeholder(m.group("value")):
            add("SE805", f"literal value for '{m.group('qkey') or m.group('key')}'", m)
    if is_yaml:
        m = _KEYED_BARE_YAML.match(line)
        if m and not _is_placeholder(m.group("value")):
            add("SE805", f"literal value for '{m.group('key')}'", m)
    return hits


def mask_secrets(text: str, kind: str) -> str:
    """``text`` with every credential the secret rules would report replaced by ``****``.

    Other rules quote whole source lines as evidence; a line that carries a key must not
    carry it into a report, a SARIF file or a CI log.
    """
    if not any(w in text.lower() for w in _TRIGGER_WORDS):
        return text
    masked = []
    for line in text.splitlines() or [text]:
        jaas_context = "loginmodule" in line.lower() or "jaas" in line.lower()
        spans = sorted((start, end) for _rule, _what, start, end in _scan_line(line, kind == "yaml", jaas_context))
        for start, end in reversed(spans):
            line = line[:start] + "****" + line[end:]
        masked.append(line)
    return "\n".join(masked)


def check_secrets(lines: list[str], kind: str) -> list[Finding]:
    """Plaintext-credential findings for a file's lines.

    Args:
        lines: the file's lines (no line endings needed).
        kind: ``python``, ``sql``, ``yaml`` or ``json``.

    Returns:
        One FAIL per secret; a PASS (SE805) when the file reads credentials
        from a secret scope and has no plaintext credential.

    """
    findings: list[Finding] = []
    first_reference: tuple[int, str] | None = None
    for number, line in enumerate(lines, start=1):
        lowered = line.lower()
        if first_reference is None and any(h in lowered for h in _REFERENCE_HINTS):
            first_reference = (number, line)
        # Cheap pre-filter: most lines hold none of the trigger words.
        if not any(w in lowered for w in _TRIGGER_WORDS):
            continue
        # JAAS strings are often split over lines (implicit concatenation), so
        # the LoginModule may sit on one of the two previous lines.
        context = " ".join(lines[max(0, number - 3): number]).lower()
        jaas_context = "loginmodule" in context or "jaas" in context
        for rule, what, start, end in _scan_line(line, kind == "yaml", jaas_context):
            findings.append(make_finding(rule, "FAIL", number, f"Plaintext credential: {what}.", _redact(line, start, end)))
    if not findings and first_reference is not None:
        number, line = first_reference
        findings.append(make_finding("SE805", "PASS", number, "Credentials are read from a secret scope.", line))
    return findings
