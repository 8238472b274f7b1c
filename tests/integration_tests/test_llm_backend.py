"""Backend selection and the client's resilience, over real HTTP to the local server."""

from __future__ import annotations

import time

import pytest
from langchain_openai import AzureChatOpenAI, ChatOpenAI

from agent.llm.backend import chat_model, load_config, redact, safe_url
from agent.session import OFFLINE_NOTICE, backend_status
from tests.support.llm import TEST_KEY, model_env
from tests.support.openai_server import FakeOpenAI, error, slow, text, truncated


@pytest.fixture
def server():
    with FakeOpenAI() as srv:
        yield srv


def test_no_key_means_offline_said_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert load_config() is None and chat_model() is None
    assert backend_status() == OFFLINE_NOTICE
    assert "Offline engine" in OFFLINE_NOTICE and "without a model" in OFFLINE_NOTICE


def test_openai_compatible_selected_and_described_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": "http://user:pw@127.0.0.1:9/v1?token=abc",
           "STREAMING_ENGINEER_MODEL": "qwen2.5", "STREAMING_ENGINEER_TIMEOUT": "7", "STREAMING_ENGINEER_MAX_RETRIES": "3"}
    config = load_config(env)
    assert config.provider == "openai" and config.model == "qwen2.5"
    assert config.timeout == 7 and config.max_retries == 3
    model = chat_model(env)
    assert isinstance(model, ChatOpenAI) and not isinstance(model, AzureChatOpenAI)
    assert model.max_retries == 3 and model.request_timeout == 7
    status = config.describe()
    assert "qwen2.5" in status and "127.0.0.1:9/v1" in status
    for secret in (TEST_KEY, "user", "pw", "token=abc"):
        assert secret not in status
    assert chat_model(env) is model  # built once per configuration
    assert TEST_KEY not in repr(model) and TEST_KEY not in str(model.model_dump())


def test_default_model_and_bad_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config({"OPENAI_API_KEY": "k", "STREAMING_ENGINEER_TIMEOUT": "soon", "STREAMING_ENGINEER_MAX_RETRIES": "-1"})
    assert config.model == "gpt-4o-mini" and config.timeout == 30 and config.max_retries == 2
    assert config.endpoint == "https://api.openai.com/v1"


def test_azure_selected_and_served_over_http(server: FakeOpenAI) -> None:
    env = {"AZURE_OPENAI_API_KEY": TEST_KEY, "AZURE_OPENAI_ENDPOINT": f"http://127.0.0.1:{server.port}",
           "AZURE_OPENAI_API_VERSION": "2024-10-21", "STREAMING_ENGINEER_MODEL": "my-deployment",
           "OPENAI_API_KEY": "other"}
    config = load_config(env)
    assert config.provider == "azure" and "Azure OpenAI" in config.describe()
    model = chat_model(env)
    assert isinstance(model, AzureChatOpenAI)
    server.script(text("hello from azure"))
    assert model.invoke("hi").content == "hello from azure"
    (request,) = server.chat_requests
    assert request.path.startswith("/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21")
    assert request.headers.get("api-key") == TEST_KEY


def test_redact_and_safe_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    assert redact(f"error with {TEST_KEY} inside") == "error with [redacted] inside"
    assert safe_url("https://a:b@host:8443/v1?key=1#x") == "https://host:8443/v1"


def test_500_is_retried_with_backoff_then_succeeds(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    model_env(monkeypatch, server, retries=2)
    server.script(error(500), error(503), text("third time lucky"))
    assert chat_model().invoke("hi").content == "third time lucky"
    assert len(server.chat_requests) == 3


def test_429_honours_retry_after(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    model_env(monkeypatch, server, retries=2)
    server.script(error(429, retry_after=1.5), text("after the wait"))
    assert chat_model().invoke("hi").content == "after the wait"
    first, second = server.chat_requests
    # The client's own backoff would wait at most 0.5 s here; Retry-After says 1.5 s.
    assert second.at - first.at >= 1.4


def test_retries_are_bounded(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    import openai

    model_env(monkeypatch, server, retries=1)
    server.script(error(500), error(500), error(500))
    with pytest.raises(openai.InternalServerError):
        chat_model().invoke("hi")
    assert len(server.chat_requests) == 2 and server.pending() == 1


def test_timeout_is_retried_then_given_up(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    import openai

    model_env(monkeypatch, server, timeout=0.5, retries=1)
    server.script(slow(5), slow(5))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        chat_model().invoke("hi")
    assert time.monotonic() - started < 4
    assert len(server.chat_requests) == 2


def test_cut_off_body_is_retried(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    model_env(monkeypatch, server, retries=1)
    server.script(truncated("a reply that never arrives whole"), text("whole reply"))
    assert chat_model().invoke("hi").content == "whole reply"
    assert len(server.chat_requests) == 2


def test_models_endpoint_lists_the_model(server: FakeOpenAI) -> None:
    import openai

    client = openai.OpenAI(base_url=server.url, api_key="k")
    assert [m.id for m in client.models.list()] == ["local-test-model"]
