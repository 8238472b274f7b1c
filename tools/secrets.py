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
import unicodedata

REMOVED = "[secret removed]"

_NOT_A_REFERENCE = r"(?!\{\{secrets/|\$\{|\{\{|dbutils\.secrets|secret\(|\[secret removed\])"
"""A value written as a secret reference or a variable is not the secret itself."""
_NOT_SCOPE_KEY = r"(?![\w.-]+/[\w.-]+(?![^\s\"',;&})]))(?![0-9.]+(?![^\s\"',;&})]))"
"""``secret: streaming/kafka-jaas`` names a secret scope and key (a reference), ``max_token: 700`` a number."""
_PASSWORD_KEY = r"(?:password|passwd|passphrase|pwd)"
"""The end of a setting name (``sasl.password``, ``KAFKA_PWD``): matched wherever it ends a name, with no scan
back to where the name starts (a prefix pattern made a 20,000-character ``a.a.a...`` message take minutes)."""
_SECRET_KEY = (r"(?:(?:client[_.-]?secret|secret[_.-]?access[_.-]?key|secret[_.-]?key|api[_.-]?key"
               r"|access[_.-]?token|auth[_.-]?token|session[_.-]?token|refresh[_.-]?token|bearer[_.-]?token"
               r"|private[_.-]?key|sas[_.-]?token|account[_.-]?key|access[_.-]?key|token|secret))")
"""Setting names whose value is a credential (``AZURE_CLIENT_SECRET``, ``aws_session_token``, ``secretKey``...)."""
_SECRET_OPTION = (r"(?:[A-Za-z0-9_.-]{0,40}?(?:password|passwd|secret|token|api[_.-]?key|account\.key|sas|credential)"
                  r"[A-Za-z0-9_.-]{0,80})")
"""A name passed with its value as two strings: ``.option("awsSecretKey", "...")``,
``conf.set("fs.azure.account.key.x", "...")``."""
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
    ("a Databricks OAuth secret", re.compile(r"\bdose[0-9a-f]{32}\b")),
    ("an API token", re.compile(
        r"\b(?:sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|glpat-[A-Za-z0-9_-]{20,}"
        r"|xox[abposr]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{20,}|hf_[A-Za-z0-9]{30,}|pypi-AgE[A-Za-z0-9_-]{40,}"
        r"|AIza[0-9A-Za-z_-]{35})")),
    ("a Slack webhook URL", re.compile(r"https://hooks\.slack\.com/services/(?P<value>[A-Za-z0-9/_-]{20,})")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("a bearer token", re.compile(r"\bBearer\s+" + _NOT_A_REFERENCE + r"(?P<value>[A-Za-z0-9._~+/-]{16,}=*)")),
    ("a shared access signature", re.compile(r"(?<![A-Za-z0-9])sig=(?P<value>[A-Za-z0-9%+/=_-]{10,})")),
    ("a client secret or key", re.compile(_SECRET_KEY + _ASSIGN + _NOT_A_REFERENCE + _NOT_SCOPE_KEY + _VALUE,
                                          re.I)),
    ("a client secret or key", re.compile(r"[\"']" + _SECRET_OPTION + r"[\"']\s*,\s*[\"']" + _NOT_A_REFERENCE
                                          + _NOT_SCOPE_KEY + r"(?=[^\"'\s]*[0-9!@#$%^&*+/=~])(?P<value>[^\"'\s]{6,})[\"']",
                                          re.I)),
    ("a password", re.compile(_PASSWORD_KEY + _ASSIGN + _NOT_A_REFERENCE + _VALUE, re.I)),
    ("a password", re.compile(r"(?<![A-Za-z])pass\s*=\s*" + _NOT_A_REFERENCE + _VALUE, re.I)),
    ("a password",
     # "my kafka password is hunter2": a value with a digit or symbol, or the message's last word
     # ("the password is stored in a vault" is a sentence, not a password).
     re.compile(r"\b(?:password|passwd|passphrase)\s+(?:is|was)\s+[\"']?" + _NOT_A_REFERENCE + _CODE
                + r"(?P<value>(?=\S*[0-9!@#$%^&*()+=\[\]{}|\\:;<>?~])[^\s\"']{3,}|[^\s\"']{3,}(?=[\"'.!]?\s*\Z))",
                re.I)),
    ("a password",
     # "password: sunshine" typed as the last words of a message: a plain word after a colon is a password to a
     # person (a bare identifier with '_' or '.' is still a variable of pasted code).
     re.compile(r"\b(?:" + _PASSWORD_KEY + r"|client[_.-]?secret)\s*:\s*[\"']?" + _NOT_A_REFERENCE + _CODE
                + r"(?P<value>[A-Za-z][A-Za-z-]{2,})[\"']?[.!]?\s*\Z", re.I)),
    ("credentials inside a URL",
     re.compile(r"\b[a-z][a-z0-9_+.-]{0,30}://[^/\s:@]+:" + _NOT_A_REFERENCE + r"(?P<value>[^/\s@]{3,})@", re.I)),
]


_INVISIBLE = re.compile("[" + "".join(re.escape(chr(c)) for c in range(0x110000)
                                     if unicodedata.category(chr(c)) == "Cf") + "]")
"""Format characters (zero-width spaces and joiners, bidi overrides): invisible, so ``pass\u200bword=...`` would
read as a password to a person and as nothing to a pattern. They are taken out of what is screened."""
_LOOKALIKES = str.maketrans("аеорсѕіјхуԁԝкАВЕКМНОРСТХοα", "aeopcsijxydwkABEKMHOPCTXoa")
"""Cyrillic and Greek letters that look like the Latin ones of setting names (``pаssword`` with a Cyrillic а)."""


def _disguises(text: str) -> list[str]:
    """``text`` as a reader sees it: with full-width and compatibility forms folded (NFKC), and lookalikes."""
    folded = unicodedata.normalize("NFKC", text)
    latin = folded.translate(_LOOKALIKES)
    return [t for t in dict.fromkeys((folded, latin)) if t != text]


def find_secret(value: str) -> str | None:
    """Why ``value`` looks like it carries a secret, or ``None`` (also when written in disguise)."""
    value = _INVISIBLE.sub("", value)
    for text in (value, *_disguises(value)):
        for reason, pattern in _SECRET_PATTERNS:
            if pattern.search(text):
                return reason
    return None


def redact(text: str) -> tuple[str, list[str]]:
    """``text`` with every recognised secret replaced by ``[secret removed]``, and the reasons found.

    Invisible format characters are removed first. A secret that only shows once full-width forms and
    lookalike letters are folded (``ｐａｓｓｗｏｒｄ＝…``) is removed from the folded text, which is then returned.

    Returns:
        ``(clean text, reasons)``; the reasons are in pattern order, each once.

    """
    clean, reasons = _redact(_INVISIBLE.sub("", text))
    for disguised in _disguises(clean):
        unfolded, more = _redact(disguised)
        if more:
            return unfolded, reasons + [r for r in more if r not in reasons]
    return clean, reasons


def _redact(text: str) -> tuple[str, list[str]]:
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
