"""Load YAML/JSON configs safely and remember the line of every key.

``yaml.safe_load`` builds only plain data, but an alias bomb ("billion laughs")
is still dangerous: the document is tiny, while anything that walks the loaded
data expands it exponentially. So documents are composed first (aliases stay
shared nodes), their expanded size is measured with memoisation, and only
documents under ``MAX_EXPANDED_NODES`` are constructed. Mappings and lists come
back as ``LDict`` / ``LList``, which carry the line of each key / item.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from knowledge.loader import SAFE_LOADER

MAX_EXPANDED_NODES = 1_000_000  # a 2 MB file of real config has far fewer
MAX_DOCUMENTS = 1_000

_Loader = SAFE_LOADER
_MERGE_TAG = "tag:yaml.org,2002:merge"


class ConfigError(ValueError):
    """A config file that cannot (or must not) be loaded; the message says why."""


class LDict(dict):
    """A mapping that knows its own line and the line of each key."""

    line: int | None = None
    key_lines: dict[Any, int]

    def key_line(self, key: Any) -> int | None:
        """Line of ``key`` (falls back to the mapping's own line)."""
        return getattr(self, "key_lines", {}).get(key, self.line)


class LList(list):
    """A list that knows its own line and the line of each item."""

    line: int | None = None
    item_lines: list[int]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _guard(root: yaml.Node) -> None:
    """Refuse recursive aliases and documents that expand past the node budget."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > MAX_EXPANDED_NODES:
                raise ConfigError(
                    f"YAML document expands to more than {MAX_EXPANDED_NODES:,} nodes through aliases "
                    "(an alias bomb?); refused"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ConfigError("YAML document contains a recursive alias; refused")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise ConfigError("YAML document contains a recursive alias; refused")
            if id(child) not in sizes:
                stack.append((child, False))


_PLAIN_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


def _construct(loader: Any, node: yaml.Node) -> Any:
    """Build plain data from a (guarded) node tree, recording lines."""
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_COLLECTION_TAGS:
        # Safe loading means plain data only: python/object and friends are refused.
        raise ConfigError(f"unsupported YAML tag {node.tag} at line {node.start_mark.line + 1}; refused")
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves "<<" merge keys
        mapping = LDict()
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True) if isinstance(key_node, yaml.ScalarNode) else None
            if key is None or not isinstance(key, (str, int, float, bool)):
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else repr(key)
            mapping[key] = _construct(loader, value_node)
            mapping.key_lines[key] = key_node.start_mark.line + 1
        return mapping
    if isinstance(node, yaml.SequenceNode):
        items = LList(_construct(loader, child) for child in node.value)
        items.line = node.start_mark.line + 1
        items.item_lines = [child.start_mark.line + 1 for child in node.value]
        return items
    return loader.construct_object(node, deep=True)


def load_yaml(text: str) -> list[Any]:
    """All documents of a YAML text, safely.

    Raises:
        ConfigError: invalid YAML, unsafe tags, alias bombs, too many documents.

    """
    loader = _Loader(text)
    documents: list[Any] = []
    try:
        while loader.check_node():
            if len(documents) >= MAX_DOCUMENTS:
                raise ConfigError(f"more than {MAX_DOCUMENTS} YAML documents in one file; refused")
            node = loader.get_node()
            if node is None:
                continue
            _guard(node)
            documents.append(_construct(loader, node))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"invalid YAML{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return documents


def _with_lines(data: Any, text: str) -> Any:
    """Wrap ``json.loads`` output in LDict/LList, guessing key lines from the text."""
    positions: dict[str, list[int]] = {}
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"\s*:', text):
        positions.setdefault(match.group(1), []).append(text.count("\n", 0, match.start()) + 1)

    def wrap(value: Any) -> Any:
        if isinstance(value, dict):
            mapping = LDict()
            mapping.key_lines = {}
            for key, item in value.items():
                lines = positions.get(key)
                mapping.key_lines[key] = lines[0] if lines else 1
                mapping[key] = wrap(item)
            mapping.line = min(mapping.key_lines.values(), default=1)
            return mapping
        if isinstance(value, list):
            items = LList(wrap(v) for v in value)
            items.line = None
            items.item_lines = []
            return items
        return value

    return wrap(data)


def load_json(text: str) -> list[Any]:
    """A JSON document (as a one-element list, like ``load_yaml``), with key lines.

    JSON is parsed by the YAML loader first, which keeps exact lines; the
    few JSON texts YAML rejects (tabs in odd places, some escapes) go through
    ``json`` with lines found by searching for each key.

    Raises:
        ConfigError: invalid JSON.

    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise ConfigError("JSON nested too deeply; refused") from None
    try:
        documents = load_yaml(text)
        if len(documents) == 1:
            return documents
    except ConfigError:
        pass
    return [_with_lines(data, text)]
