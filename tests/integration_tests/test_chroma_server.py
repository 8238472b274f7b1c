"""The index on a real Chroma server (CHROMA_URL), and a clear error when it is down.

The test starts ``chroma run`` (shipped with the chromadb wheel) on a free
port of 127.0.0.1 with a temporary path, points CHROMA_URL at it, builds and
searches the index through it, then stops the server it started.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge import cli
from knowledge.index import IndexUnavailableError, KnowledgeIndex
from knowledge.retrieval import Retriever
from tests.unit_tests.test_retrieval import make_pack

STARTUP_SECONDS = 60


def _chroma_executable() -> str | None:
    beside_python = Path(sys.executable).with_name("chroma")
    return str(beside_python) if beside_python.exists() else shutil.which("chroma")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    import chromadb
    from chromadb.config import Settings

    host, port = url.rsplit("//", 1)[1].split(":")
    deadline = time.monotonic() + STARTUP_SECONDS
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chroma run exited with code {process.returncode}")
        try:
            chromadb.HttpClient(host=host, port=int(port), settings=Settings(anonymized_telemetry=False)).heartbeat()
            return
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            last = exc
            time.sleep(0.5)
    raise RuntimeError(f"chroma server did not come up in {STARTUP_SECONDS} s: {last}")


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Chroma server on 127.0.0.1 for this module; yields its URL."""
    executable = _chroma_executable()
    if executable is None:
        pytest.skip("the chroma CLI (from the chromadb wheel) is not installed")
    data = tmp_path_factory.mktemp("chroma-data")
    port = _free_port()
    log = (data.parent / "chroma-server.log").open("wb")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    process = subprocess.Popen(
        [executable, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(data)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Offline environment with a fresh home; returns a small pack."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("STREAMING_ENGINEER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STREAMING_ENGINEER_EMBEDDINGS", raising=False)
    return make_pack(tmp_path)


def test_index_and_search_through_a_chroma_server(
    chroma_server: str, offline: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import chromadb
    from chromadb.config import Settings

    monkeypatch.setenv("CHROMA_URL", chroma_server)
    index = KnowledgeIndex(pack_dir=offline)
    report = index.sync(progress=False)
    assert report.embedded == report.total > 0

    # The vectors really are on the server (passage + summary vector each).
    host, port = chroma_server.rsplit("//", 1)[1].split(":")
    client = chromadb.HttpClient(host=host, port=int(port), settings=Settings(anonymized_telemetry=False))
    assert client.get_collection(index.collection_name).count() == 2 * report.total

    hits = Retriever(pack_dir=offline).search("how do I cap offsets per micro-batch from kafka?", k=3)
    assert hits[0].id.startswith("article:kafka#kafka-rate-limiting")
    assert Retriever(pack_dir=offline).search("多个流合并时全局水位取哪个？", k=1)[0].id.startswith("article:watermarks#multiple")

    # A second build against the server re-embeds nothing.
    assert KnowledgeIndex(pack_dir=offline).sync(progress=False).embedded == 0
    assert cli.main(["search", "watermark", "--json", "-k", "1", "--pack", str(offline)]) == 0
    assert '"results"' in capsys.readouterr().out


def test_a_server_that_is_down_gives_a_clear_message(
    offline: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    monkeypatch.setenv("CHROMA_URL", url)
    with pytest.raises(IndexUnavailableError) as info:
        Retriever(pack_dir=offline)
    message = str(info.value)
    assert f"Cannot reach the Chroma server at {url}" in message
    assert "unset CHROMA_URL" in message

    for argv in (["search", "kafka"], ["ask", "what is a watermark?"], ["index"]):
        assert cli.main([*argv, "--pack", str(offline)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: Cannot reach the Chroma server") and "Traceback" not in err
