"""Pick the chat model from the environment: OpenAI-compatible, Azure OpenAI, or none.

No key means no model: the offline engine answers every turn. The key is read
from the environment when the client is built and is held only inside the
client (a ``SecretStr``); nothing here prints, logs or stores it.

Resilience is the ``openai`` client's own: ``max_retries`` retries 408/409/429
and 5xx answers and timeouts with exponential backoff (0.5 s doubling, capped
at 8 s, with jitter) and honours ``Retry-After`` / ``retry-after-ms`` up to two
minutes (a longer wait is not retried: the turn falls back at once). The tests
check this against a local server.

Every call is bounded (``agent.llm.calls``): an output-token limit per kind of
call, a time limit, and a streamed reply cut when it loops. The limits live in
``BackendConfig`` and come from the environment like the rest.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from langchain_core.language_models import BaseChatModel

log = logging.getLogger("streaming_engineer.llm")

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT_S = 30.0
"""Seconds to wait for the endpoint to connect, answer, or send the next streamed chunk."""
DEFAULT_MAX_RETRIES = 2
"""Retries after the first attempt: three attempts at most per model call."""
DEFAULT_AZURE_API_VERSION = "2024-10-21"
KEY_VARIABLES = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")
"""Environment variables that hold secrets (redacted wherever text leaves the process)."""
CallKind = Literal["answer", "extract", "judge", "probe"]
"""What a model call is for; each kind has its own output-token limit."""
DEFAULT_MAX_TOKENS: dict[str, int] = {"answer": 700, "extract": 40, "judge": 300, "probe": 40}
"""Output tokens per kind of call: an answer is asked to stay under 200 words unless it holds code (700 tokens
leave room for a config block), a form value is one short line, a judge's verdict a small JSON object, the
tool-calling probe one call with no arguments."""
MAX_TOKENS_VARIABLES: dict[str, str] = {
    "answer": "STREAMING_ENGINEER_MAX_TOKENS",
    "extract": "STREAMING_ENGINEER_MAX_TOKENS_EXTRACT",
    "judge": "STREAMING_ENGINEER_MAX_TOKENS_JUDGE",
}
DEFAULT_CALL_SECONDS = 120.0
"""Wall-clock limit of one model call, however steadily it streams (``STREAMING_ENGINEER_CALL_SECONDS``)."""
ToolMode = Literal["auto", "on", "off"]
"""``STREAMING_ENGINEER_TOOLS``: ``auto`` asks each endpoint once per session whether it calls tools."""


@dataclass(frozen=True)
class BackendConfig:
    """Which endpoint and model to use (everything but the key).

    Attributes:
        provider: ``openai`` (api.openai.com or any OpenAI-compatible server) or ``azure``.
        model: the model name (the deployment name on Azure).
        base_url: the OpenAI-compatible base URL, if not api.openai.com.
        azure_endpoint: the Azure OpenAI resource endpoint.
        api_version: the Azure REST API version.
        timeout: seconds per request (connect, answer, each streamed chunk).
        max_retries: retries per model call.
        max_tokens: output-token limit per kind of call, as ``((kind, tokens), ...)``.
        call_seconds: wall-clock limit of one model call.
        tools: whether the endpoint is offered tools (``auto``: probed once per session).

    """

    provider: Literal["openai", "azure"]
    model: str
    base_url: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES
    max_tokens: tuple[tuple[str, int], ...] = tuple(DEFAULT_MAX_TOKENS.items())
    call_seconds: float = DEFAULT_CALL_SECONDS
    tools: ToolMode = "auto"

    def token_limit(self, kind: CallKind) -> int:
        """The output-token limit of a ``kind`` call."""
        return dict(self.max_tokens).get(kind, DEFAULT_MAX_TOKENS["answer"])

    @property
    def endpoint(self) -> str:
        """Where requests go, without credentials or query (safe to show)."""
        raw = self.azure_endpoint if self.provider == "azure" else (self.base_url or "https://api.openai.com/v1")
        return safe_url(raw or "")

    def describe(self) -> str:
        """The one-line status the UI and CLI show (never the key)."""
        kind = "Azure OpenAI" if self.provider == "azure" else "OpenAI-compatible endpoint"
        return (
            f"Model: {self.model} via {kind} {self.endpoint}. If the endpoint fails, a turn says so and "
            "answers with the offline engine."
        )


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment (a key may hide in any of them)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _number(env: Mapping[str, str], name: str, default: float, cast: type = float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        log.warning("ignoring %s=%r: not a number", name, raw)
        return default
    return value if value >= 0 else default


def _limits(env: Mapping[str, str]) -> dict:
    """The call limits and the tool mode from the environment (a bad value is logged and ignored)."""
    tokens = dict(DEFAULT_MAX_TOKENS)
    for kind, name in MAX_TOKENS_VARIABLES.items():
        value = int(_number(env, name, DEFAULT_MAX_TOKENS[kind], int))
        tokens[kind] = value if value > 0 else DEFAULT_MAX_TOKENS[kind]
    seconds = _number(env, "STREAMING_ENGINEER_CALL_SECONDS", DEFAULT_CALL_SECONDS)
    tools = env.get("STREAMING_ENGINEER_TOOLS", "").strip().lower() or "auto"
    if tools not in ("auto", "on", "off"):
        log.warning("ignoring STREAMING_ENGINEER_TOOLS=%r: use auto, on or off", tools)
        tools = "auto"
    return {"max_tokens": tuple(tokens.items()), "call_seconds": seconds or DEFAULT_CALL_SECONDS, "tools": tools}


def load_config(env: Mapping[str, str] | None = None) -> BackendConfig | None:
    """Read the backend from the environment; ``None`` when no key is set (offline engine).

    Azure is chosen when ``AZURE_OPENAI_API_KEY`` and ``AZURE_OPENAI_ENDPOINT`` are
    both set; otherwise ``OPENAI_API_KEY`` selects OpenAI or, with
    ``OPENAI_BASE_URL``, any OpenAI-compatible server (vLLM, Ollama, llama.cpp,
    LM Studio; give such a server any non-empty key).
    """
    env = os.environ if env is None else env
    model = env.get("STREAMING_ENGINEER_MODEL", "").strip() or DEFAULT_MODEL
    timeout = _number(env, "STREAMING_ENGINEER_TIMEOUT", DEFAULT_TIMEOUT_S)
    retries = int(_number(env, "STREAMING_ENGINEER_MAX_RETRIES", DEFAULT_MAX_RETRIES, int))
    limits = _limits(env)
    if env.get("AZURE_OPENAI_API_KEY") and env.get("AZURE_OPENAI_ENDPOINT"):
        version = (env.get("AZURE_OPENAI_API_VERSION") or env.get("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION)
        return BackendConfig("azure", model, azure_endpoint=env["AZURE_OPENAI_ENDPOINT"].strip(),
                             api_version=version.strip(), timeout=timeout, max_retries=retries, **limits)
    if env.get("OPENAI_API_KEY"):
        base_url = env.get("OPENAI_BASE_URL", "").strip() or None
        return BackendConfig("openai", model, base_url=base_url, timeout=timeout, max_retries=retries, **limits)
    return None


def build_chat_model(config: BackendConfig, api_key: str) -> BaseChatModel:
    """The LangChain chat model for ``config``.

    Temperature 0 keeps answers close to the passages. An OpenAI-compatible
    server gets the Chat Completions API (the one they all serve) and is asked
    for token usage in streams only where OpenAI itself serves it.

    The answer's token limit is the client's default, so even a call made
    without ``agent.llm.calls`` (the eval judge) is bounded. OpenAI and Azure
    read it as ``max_completion_tokens`` (what langchain-openai sends); other
    servers get the classic ``max_tokens`` in the body, because some of them
    (llama-cpp-python's server) silently ignore ``max_completion_tokens``.
    """
    if config.provider == "azure":
        from langchain_openai import AzureChatOpenAI

        return AzureChatOpenAI(
            azure_endpoint=config.azure_endpoint, azure_deployment=config.model, model=config.model,
            api_version=config.api_version, api_key=api_key, temperature=0,
            timeout=config.timeout, max_retries=config.max_retries, max_tokens=config.token_limit("answer"),
        )
    from langchain_openai import ChatOpenAI

    if config.base_url:
        extra = {"use_responses_api": False, "extra_body": {"max_tokens": config.token_limit("answer")}}
    else:
        extra = {"max_tokens": config.token_limit("answer")}
    return ChatOpenAI(
        model=config.model, base_url=config.base_url, api_key=api_key, temperature=0,
        timeout=config.timeout, max_retries=config.max_retries, **extra,
    )


_LOCK = threading.Lock()
_CACHE: dict[tuple, BaseChatModel] = {}


def chat_model(env: Mapping[str, str] | None = None) -> BaseChatModel | None:
    """The configured chat model, built once per configuration; ``None`` offline.

    The cache key holds a hash of the key, not the key, so a changed key
    (tests, rotation) builds a new client.
    """
    env = os.environ if env is None else env
    config = load_config(env)
    if config is None:
        return None
    secret = env.get("AZURE_OPENAI_API_KEY") if config.provider == "azure" else env.get("OPENAI_API_KEY")
    cache_key = (config, hashlib.sha256((secret or "").encode()).hexdigest())
    with _LOCK:
        model = _CACHE.get(cache_key)
        if model is None:
            model = _CACHE[cache_key] = build_chat_model(config, secret or "")
        return model


def secrets_in_environment(env: Mapping[str, str] | None = None) -> list[str]:
    """The key values set in the environment (to scrub them from any text)."""
    env = os.environ if env is None else env
    return [env[name] for name in KEY_VARIABLES if env.get(name)]


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` with every configured key replaced by ``[redacted]``."""
    for secret in secrets_in_environment(env):
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text
