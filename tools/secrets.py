"""Recognise secret values in text, and remove them before anything is stored or sent.

One place for what counts as a secret: the session screens every user message
with :func:`redact` before it reaches the graph (so a checkpoint, a transcript
or a model request never holds it), and template rendering refuses a value
:func:`find_secret` recognises.

Recognition needs context — a key name (``password``, ``sasl.password``,
``client_secret``, ``AccountKey``), a known token prefix or a PEM armour line —
so that ids which merely look random (a 40-character git SHA, a long topic
name) are still accepted as the values they are.
"""

from __future__ import annotations

import re

REMOVED = "[secret removed]"

_NOT_A_REFERENCE = r"(?!\{\{secrets/|\$\{|\{\{|dbutils\.secrets|secret\(|\[secret removed\])"
"""A value written as a secret reference or a variable is not the secret itself."""
_PASSWORD_KEY = r"(?:[A-Za-z0-9_.-]*?(?:password|passwd|passphrase|pwd))"
_SECRET_KEY = (r"(?:client[_.-]?secret|secret[_.-]?access[_.-]?key|aws[_.-]?secret[_.-]?access[_.-]?key|secret[_.-]?key"
               r"|api[_.-]?key|access[_.-]?token|auth[_.-]?token|private[_.-]?key|sas[_.-]?token)")
_ASSIGN = r"[\"']?\s*[:=]\s*[\"']?"
_CODE = r"(?![A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\s*[(\[])"
"""Not a code expression (``os.environ["X"]``, ``getpass()``, ``cfg.get("x")``): pasted code is no secret."""
_VALUE = (r"(?P<value>" + _CODE
          # Quoted, or with a character other than letters and '_': a bare identifier
          # (``password=kafka_password`` in pasted code) is a variable, not a password.
          + r"(?:(?<=[\"'])|(?=[^\s\"',;&}]*[^A-Za-z_\s\"',;&}]))[^\s\"',;&}]{3,})")

# (why, pattern): the first that matches names the reason. A pattern with a ``value`` group has only that
# group removed, so "password=[secret removed]" still tells the reader which setting was meant.
_SECRET_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("a private key (PEM block)",
     re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)")),
    ("a password inside a JAAS config", re.compile(r"\bpassword\s*=\s*\"" + _NOT_A_REFERENCE + r"(?P<value>[^\"]+)\"", re.I)),
    ("an Event Hubs / Service Bus shared access key",
     re.compile(r"\bSharedAccessKey\s*=\s*(?P<value>[^;\s\"']+)", re.I)),
    ("an Azure storage account key", re.compile(r"\bAccountKey\s*=\s*(?P<value>[^;\s\"']+)", re.I)),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("an AWS secret access key",
     # 40 characters of base64 with a '/' or '+' and mixed case and digits: git SHAs (hex) and topic
     # names (no '/' or '+', or lowercase paths) do not qualify.
     re.compile(r"(?<![A-Za-z0-9/+])(?=[A-Za-z0-9/+]{0,39}[/+])(?=[A-Za-z0-9/+]{0,39}[A-Z])"
                r"(?=[A-Za-z0-9/+]{0,39}[a-z])(?=[A-Za-z0-9/+]{0,39}[0-9])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")),
    ("a Databricks personal access token", re.compile(r"\bdapi[0-9a-f]{32}(?:-\d+)?\b")),
    ("an API token", re.compile(r"\b(?:sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abp]-[A-Za-z0-9-]{10,})")),
    ("a client secret or key", re.compile(r"\b" + _SECRET_KEY + _ASSIGN + _NOT_A_REFERENCE + _VALUE, re.I)),
    ("a password", re.compile(r"\b" + _PASSWORD_KEY + _ASSIGN + _NOT_A_REFERENCE + _VALUE, re.I)),
    ("a password", re.compile(r"(?<![A-Za-z])pass\s*=\s*" + _NOT_A_REFERENCE + _VALUE, re.I)),
    ("a password",
     # "my kafka password is hunter2": a value with a digit or symbol, or the message's last word
     # ("the password is stored in a vault" is a sentence, not a password).
     re.compile(r"\b(?:password|passwd|passphrase)\s+(?:is|was)\s+[\"']?" + _NOT_A_REFERENCE + _CODE
                + r"(?P<value>(?=\S*[0-9!@#$%^&*()+=\[\]{}|\\:;<>?~])[^\s\"']{3,}|[^\s\"']{3,}(?=[\"'.!]?\s*\Z))",
                re.I)),
    ("credentials inside a URL",
     re.compile(r"\b[a-z][a-z0-9_+.-]*://[^/\s:@]+:" + _NOT_A_REFERENCE + r"(?P<value>[^/\s@]{3,})@", re.I)),
]


def find_secret(value: str) -> str | None:
    """Why ``value`` looks like it carries a secret, or ``None``."""
    for reason, pattern in _SECRET_PATTERNS:
        if pattern.search(value):
            return reason
    return None


def redact(text: str) -> tuple[str, list[str]]:
    """``text`` with every recognised secret replaced by ``[secret removed]``, and the reasons found.

    Returns:
        ``(clean text, reasons)``; the reasons are in pattern order, each once.

    """
    reasons: list[str] = []

    def removed(match: re.Match[str]) -> str:
        if "value" in match.re.groupindex and match.group("value") is not None:
            start, end = match.span("value")
            offset = match.start()
            whole = match.group(0)
            return whole[: start - offset] + REMOVED + whole[end - offset:]
        return REMOVED

    for reason, pattern in _SECRET_PATTERNS:
        text, count = pattern.subn(removed, text)
        if count and reason not in reasons:
            reasons.append(reason)
    return text, reasons


__all__ = ["REMOVED", "_SECRET_PATTERNS", "find_secret", "redact"]
