"""Validate user answers by kind (durations, tables, topics, numbers, ...).

One function serves every front end and the model's extracted values, so a
bad answer gets the same clear message wherever it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ANSWER_CHARS = 2000
_UNITS = {
    "ms": "milliseconds", "millisecond": "milliseconds", "milliseconds": "milliseconds",
    "s": "seconds", "sec": "seconds", "secs": "seconds", "second": "seconds", "seconds": "seconds", "秒": "seconds",
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes", "分钟": "minutes",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours", "小时": "hours",
    "d": "days", "day": "days", "days": "days", "天": "days",
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([A-Za-z\u4e00-\u9fff]+)$")
_IDENT = r"(?:`[^`]{1,255}`|[A-Za-z_][A-Za-z0-9_]{0,254})"
_TABLE = re.compile(rf"^{_IDENT}(?:\.{_IDENT}){{0,2}}$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}(?:\s*,\s*[A-Za-z0-9._-]{1,249})*$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.I)
_PATH = re.compile(r"^(?:/|dbfs:/|abfss://|s3a?://|gs://|wasbs://|file:/)[^\s]*$")
_SECRET_REF = re.compile(r"^([A-Za-z0-9_.-]{1,128})/([A-Za-z0-9_.-]{1,128})$")

KIND_HINTS = {
    "duration": 'a duration such as "10 minutes" or "30 seconds"',
    "table": "a table name such as main.bronze.events",
    "topic": "a topic name (letters, digits, '.', '_', '-'), or several separated by commas",
    "positive_int": "a whole number greater than 0",
    "percent": 'a percentage such as "5%" or "0.5%"',
    "url": "an http(s):// URL",
    "path": "a storage path such as /Volumes/main/raw/events, abfss://..., s3://... or dbfs:/...",
    "secret_ref": "a Databricks secret scope and key as scope/key (not the secret itself)",
    "choice": "one of the options",
    "text": "some text",
}


@dataclass(frozen=True)
class Checked:
    """The outcome of validating one answer."""

    ok: bool
    value: str = ""
    error: str = ""


def check_value(kind: str, raw: str, choices: tuple[str, ...] | list[str] = ()) -> Checked:
    """Validate and normalise one answer.

    Args:
        kind: the question's kind (see ``KIND_HINTS``).
        raw: what the user typed.
        choices: allowed answers for ``choice``.

    Returns:
        ``Checked`` with the normalised value, or the reason it was refused.

    """
    text = (raw or "").strip()
    if not text:
        return Checked(False, error="the answer is empty")
    if len(text) > MAX_ANSWER_CHARS:
        return Checked(False, error=f"the answer is {len(text)} characters; the limit is {MAX_ANSWER_CHARS}")
    if any(ord(c) < 32 and c not in "\t\n" for c in text):
        return Checked(False, error="the answer contains control characters")
    if ("{{" in text or "}}" in text) and kind != "secret_ref":
        return Checked(False, error="the answer contains '{{' or '}}', which templates reserve for placeholders")
    hint = KIND_HINTS.get(kind, KIND_HINTS["text"])
    if kind == "duration":
        match = _DURATION.match(text.lower())
        if not match or match.group(2) not in _UNITS or float(match.group(1)) <= 0:
            return Checked(False, error=f"{text!r} is not {hint}")
        number = match.group(1).rstrip("0").rstrip(".") if "." in match.group(1) else match.group(1)
        return Checked(True, f"{number} {_UNITS[match.group(2)]}")
    if kind == "table":
        return Checked(True, text) if _TABLE.match(text) else Checked(False, error=f"{text!r} is not {hint}")
    if kind == "topic":
        return Checked(True, re.sub(r"\s*,\s*", ",", text)) if _TOPIC.match(text) else Checked(
            False, error=f"{text!r} is not {hint}")
    if kind == "positive_int":
        cleaned = text.replace(",", "").replace("_", "")
        if cleaned.isdigit() and int(cleaned) > 0:
            return Checked(True, str(int(cleaned)))
        return Checked(False, error=f"{text!r} is not {hint}")
    if kind == "percent":
        match = re.match(r"^(\d+(?:\.\d+)?)\s*%?$", text)
        if match and 0 <= float(match.group(1)) <= 100:
            return Checked(True, f"{match.group(1)}%")
        return Checked(False, error=f"{text!r} is not {hint} between 0% and 100%")
    if kind == "url":
        return Checked(True, text) if _URL.match(text) else Checked(False, error=f"{text!r} is not {hint}")
    if kind == "path":
        return Checked(True, text) if _PATH.match(text) and ".." not in text.split("/") else Checked(
            False, error=f"{text!r} is not {hint}")
    if kind == "secret_ref":
        ref = text.removeprefix("{{secrets/").removesuffix("}}")
        match = _SECRET_REF.match(ref)
        if not match:
            return Checked(False, error=f"that is not {hint}; never paste the secret value itself")
        return Checked(True, ref)
    if kind == "choice" and choices:
        for choice in choices:
            if text.lower() == str(choice).lower():
                return Checked(True, str(choice))
        if text.isdigit() and 1 <= int(text) <= len(choices):
            return Checked(True, str(choices[int(text) - 1]))
        return Checked(False, error=f"{text!r} is not one of: {', '.join(map(str, choices))}")
    return Checked(True, text)
