"""Shared fixtures: one app home (and knowledge index) per test session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEED_ENV = "STREAMING_ENGINEER_SEED_BUNDLE"
SEED = Path(os.environ.get(SEED_ENV) or ROOT.parent / "shared" / "seed" / "000_982d15b71eeea4ea.txt")
"""The BMad agent bundle the role was written from (see the README's "Tests"): beside a checkout in CI,
absent from a user's clone. Tests that compare the pack with it skip when it is absent."""
SEED_SKIP_REASON = (
    f"the seed bundle is not at {SEED}: these tests compare the pack with the BMad bundle it was written from; "
    f"set {SEED_ENV} to the bundle file to run them"
)


def require_seed() -> Path:
    """The seed bundle's path, or skip the calling test with the reason when it is absent."""
    if not SEED.is_file():
        pytest.skip(SEED_SKIP_REASON)
    return SEED


@pytest.fixture(scope="session")
def se_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app home for the whole session; the index is built once here."""
    home = tmp_path_factory.mktemp("se-home")
    os.environ["STREAMING_ENGINEER_HOME"] = str(home)
    os.environ.pop("OPENAI_API_KEY", None)
    os.environ.pop("AZURE_OPENAI_API_KEY", None)
    os.environ["HF_HUB_OFFLINE"] = "1"
    return home


@pytest.fixture(scope="session")
def indexed_home(se_home: Path) -> Path:
    """The session home with the knowledge index built."""
    result = cli("index", home=se_home)
    assert result.returncode == 0, result.stderr
    return se_home


def cli(*args: str, home: Path, stdin: str | bytes | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the ``streaming-engineer`` console script."""
    env = {**os.environ, "STREAMING_ENGINEER_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("OPENAI_API_KEY", None)
    env.pop("AZURE_OPENAI_API_KEY", None)
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args], input=data, capture_output=True, env=env, cwd=ROOT,
        timeout=timeout, check=False,
    )


def run_script(lines: list[str] | bytes, home: Path, thread: str | None = None, *extra: str) -> list[dict]:
    """Drive ``run --script -`` and return one JSON object per turn."""
    thread = thread or uuid.uuid4().hex[:10]
    stdin = lines if isinstance(lines, bytes) else "\n".join(lines) + "\n"
    result = cli(*extra, "run", "--script", "-", "--thread", thread, home=home, stdin=stdin)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    assert "Traceback" not in result.stderr.decode(errors="replace")
    return [json.loads(line) for line in result.stdout.decode("utf-8").splitlines() if line.strip()]


def read_elsewhere(path: Path) -> bytes:
    """A file's bytes, read by another process.

    Closing any descriptor of a SQLite database file drops every POSIX lock this process holds on it,
    including the locks of the engines a test keeps open here: other processes writing the same
    store could then corrupt it ("database disk image is malformed" in later tests). Tests that look
    inside a home's databases read them this way.
    """
    return subprocess.run(["cat", str(path)], capture_output=True, check=True, timeout=60).stdout



@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist's ``--dist loadgroup`` (the README's test command runs on every core).

    Each test file stays on one worker, so its module fixtures (servers, homes) start once; every
    Spark test shares one worker, so one JVM runs them and two never compete for the cores.
    (Spreading the Spark files over the workers was measured: slower on two cores, 11.6 min
    against 10.2, and with four workers streaming queries failed with "Python worker failed to
    connect back".)
    """
    for item in items:
        if not any(item.iter_markers("xdist_group")):
            path = item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group("spark" if path.startswith("tests/spark/") else path))
