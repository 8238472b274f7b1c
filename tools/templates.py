"""Render pack templates: fill placeholders, keep secrets out, validate output.

Rendering is plain substitution in one pass: nothing in a template or a value
is ever evaluated, and a value can never introduce a new placeholder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import yaml

from knowledge.loader import PLACEHOLDER_RE, Template
from tools.secrets import _SECRET_PATTERNS, find_secret  # noqa: F401 (both stay importable from here)

DEFAULT_SECRET_SCOPE = "streaming"

class TemplateError(ValueError):
    """A template that cannot be rendered as asked (the message names the field)."""


@dataclass
class Rendered:
    """The result of rendering a template."""

    name: str
    text: str
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    secrets_replaced: dict[str, str] = field(default_factory=dict)  # field -> secret reference
    notices: list[str] = field(default_factory=list)


def secret_reference(scope: str, key: str) -> str:
    """The Databricks secret reference written into configs."""
    return "{{secrets/" + f"{scope}/{key}" + "}}"


def secret_code(scope: str, key: str) -> str:
    """The Python expression that reads a secret in a notebook or job."""
    return f'dbutils.secrets.get(scope="{scope}", key="{key}")'


def _escape(value: str, fmt: str, quoted: bool) -> str:
    if fmt in ("json", "yaml") and quoted:
        # YAML double-quoted scalars accept JSON string escapes.
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if fmt == "yaml" and ("\n" in value or value[:1] in "&*!|>%@`'\"{[" or ": " in value or " #" in value):
        return json.dumps(value, ensure_ascii=False)
    return value


def _secret_key_for(name: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-") or "secret"


def render(template: Template, values: dict[str, str], secret_scope: str = DEFAULT_SECRET_SCOPE) -> Rendered:
    """Render ``template`` with ``values``.

    Args:
        template: a pack template.
        values: answers by placeholder name. Placeholders of kind
            ``secret_ref`` take ``scope/key`` and render as a secret reference.
        secret_scope: the scope named when a secret value has to be replaced.

    Returns:
        The rendered text, with missing and unknown names listed and any
        secret-looking value replaced by a secret reference.

    Raises:
        TemplateError: when a value is unsafe or the output does not parse.

    """
    kinds = {p.name: p.kind for p in template.placeholders}
    result = Rendered(name=template.name, text="")
    result.unknown = sorted(k for k in values if k not in kinds)
    fmt = template.format
    prepared: dict[str, str] = {}
    for name in kinds:
        if name not in values or values[name] is None:
            continue
        value = str(values[name])
        if kinds[name] == "secret_ref":
            ref = value.removeprefix("{{secrets/").removesuffix("}}")
            if re.fullmatch(r"[\w.-]+/[\w.-]+", ref):
                scope, key = ref.split("/", 1)
                prepared[name] = secret_reference(scope, key)
                continue
        if "{{" in value or "}}" in value:
            raise TemplateError(f"field {name!r}: values may not contain '{{{{' or '}}}}'")
        reason = find_secret(value) or ("a secret" if kinds[name] == "secret_ref" else None)
        if reason:
            ref = secret_reference(secret_scope, _secret_key_for(name))
            result.secrets_replaced[name] = ref
            result.notices.append(
                f"The value given for {name!r} looks like {reason}; it was not written. The file reads {ref} "
                f"instead — store the value with `databricks secrets put-secret {secret_scope} {_secret_key_for(name)}`."
            )
            prepared[name] = ref
            continue
        prepared[name] = value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in prepared:
            value = prepared[name]
        elif default is not None:
            value = default
        else:
            if name not in result.missing:
                result.missing.append(name)
            return match.group(0)
        line_start = match.string.rfind("\n", 0, match.start()) + 1
        before = match.string[line_start : match.start()]
        quoted = before.count('"') % 2 == 1
        return _escape(value, fmt, quoted)

    result.text = PLACEHOLDER_RE.sub(substitute, template.text)
    validate_output(result.text, fmt, template.name)
    return result


def validate_output(text: str, fmt: str, name: str) -> None:
    """Check that JSON/YAML output parses; name the line and field if not."""
    try:
        if fmt == "json":
            json.loads(text)
        elif fmt == "yaml":
            yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        line = getattr(exc, "lineno", None) or getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
        snippet = text.splitlines()[line - 1].strip() if line and 0 < line <= len(text.splitlines()) else ""
        raise TemplateError(f"{name}: the rendered {fmt.upper()} does not parse at line {line} ({snippet!r}): {exc}") from exc
