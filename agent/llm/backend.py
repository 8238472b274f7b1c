"""Pick the chat model from the environment: OpenAI-compatible, Azure OpenAI, or none.

No key means no model: the offline engine answers every turn. The key is read
from the environment when the client is built and is held only inside the
client (a ``SecretStr``); nothing here prints, logs or stores it.

Resilience is the ``openai`` client's own: ``max_retries`` retries 408/409/429
and 5xx answers and timeouts with exponential backoff (0.5 s doubling, capped
at 8 s, with jitter) and honours ``Retry-After`` / ``retry-after-ms`` up to two
minutes (a longer wait is not retried: the turn falls back at once). The tests
check this against a local server.
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

    """

    provider: Literal["openai", "azure"]
    model: str
    base_url: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES

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
    if env.get("AZURE_OPENAI_API_KEY") and env.get("AZURE_OPENAI_ENDPOINT"):
        version = (env.get("AZURE_OPENAI_API_VERSION") or env.get("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION)
        return BackendConfig("azure", model, azure_endpoint=env["AZURE_OPENAI_ENDPOINT"].strip(),
                             api_version=version.strip(), timeout=timeout, max_retries=retries)
    if env.get("OPENAI_API_KEY"):
        base_url = env.get("OPENAI_BASE_URL", "").strip() or None
        return BackendConfig("openai", model, base_url=base_url, timeout=timeout, max_retries=retries)
    return None


def build_chat_model(config: BackendConfig, api_key: str) -> BaseChatModel:
    """The LangChain chat model for ``config``.

    Temperature 0 keeps answers close to the passages. An OpenAI-compatible
    server gets the Chat Completions API (the one they all serve) and is asked
    for token usage in streams only where OpenAI itself serves it.
    """
    if config.provider == "azure":
        from langchain_openai import AzureChatOpenAI

        return AzureChatOpenAI(
            azure_endpoint=config.azure_endpoint, azure_deployment=config.model, model=config.model,
            api_version=config.api_version, api_key=api_key, temperature=0,
            timeout=config.timeout, max_retries=config.max_retries,
        )
    from langchain_openai import ChatOpenAI

    extra = {"use_responses_api": False} if config.base_url else {}
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
