"""Two app processes share threads through PostgreSQL (Debian's ``postgresql`` package)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import cli, run_script


def _pg_bin() -> Path | None:
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(found, "initdb").exists():
            return Path(found)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1, run as the ``postgres`` user when we are root."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql); .ci/run installs it")
    # pytest's own temp folders are private to root; the server user must reach its data folder.
    parent = Path(tempfile.mkdtemp(prefix="se-pg-"))
    os.chmod(parent, 0o755)
    data = parent / "data"
    data.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser: PostgreSQL refuses to start as root")
        shutil.chown(data, "postgres")
        prefix = [runuser, "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "se"],
                   check=True, capture_output=True)
    server = subprocess.Popen([*prefix, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                               "-h", "127.0.0.1", "-k", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"postgresql://se@127.0.0.1:{port}/postgres"
    import psycopg

    deadline = time.time() + 30
    while True:
        try:
            psycopg.connect(url).close()
            break
        except psycopg.OperationalError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("PostgreSQL did not start")
            time.sleep(0.3)
    yield url
    server.terminate()
    server.wait(timeout=30)
    shutil.rmtree(parent, ignore_errors=True)


def test_two_processes_serve_the_same_thread_through_postgres(indexed_home: Path, postgres_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMING_ENGINEER_CHECKPOINT", postgres_url)
    other_home = indexed_home.parent / (indexed_home.name + "-other")
    other_home.mkdir(exist_ok=True)
    first = run_script(["*watermark-lateness", "10 minutes"], indexed_home, "pg-thread")
    assert first[-1]["pending_question"] and "[2/" in first[-1]["pending_question"]
    # A second process with another home (so no shared SQLite file) resumes the same question.
    result = cli("run", "--script", "-", "--thread", "pg-thread", home=other_home, stdin="#yolo\n")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert b"Done: **Watermarks" in result.stdout
    assert not (other_home / "checkpoints.sqlite").exists()


def test_a_bad_checkpoint_url_is_a_clear_error(indexed_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMING_ENGINEER_CHECKPOINT", "mysql://nope")
    result = cli("run", "--script", "-", home=indexed_home, stdin="*help\n")
    assert result.returncode == 2 and b"postgresql://" in result.stderr and b"Traceback" not in result.stderr
