"""``streaming-engineer mcp`` driven by the MCP SDK's own client, over stdio and over streamable HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.conftest import FIXTURES, ROOT, cli

PIPELINE = "pipelines/pyspark/kafka_orders_window_agg.py"
SINK = "pipelines/pyspark/foreachbatch_append_sink.py"
EXPECTED_TOOLS = {"check", "diagnose", "search_knowledge", "ask", "list_commands", "describe_command", "render_template",
                  "run_checklist"}
FAKE_KEY = "AKIA" + "QWERTYUIOPASDFGH"  # an AWS access key id by shape; never a real one


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")}
    return {**env, "STREAMING_ENGINEER_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def _stdio(home: Path, root: Path = FIXTURES) -> Client:
    params = StdioServerParameters(command=sys.executable, args=["-m", "agent.cli", "mcp", "--root", str(root)],
                                   env=_env(home), cwd=str(ROOT))
    return Client(params, read_timeout_seconds=300)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HttpServer:
    """``streaming-engineer mcp --http`` in a subprocess on a free 127.0.0.1 port."""

    def __init__(self, home: Path, *extra: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "mcp", "--http", "--port", str(self.port), "--root", str(FIXTURES), *extra],
            env=_env(home), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read().decode()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.3)
        raise AssertionError("the MCP HTTP server did not start")

    def client(self, headers: dict[str, str] | None = None) -> Client:
        transport = streamable_http_client(self.url, http_client=create_mcp_http_client(headers=headers))
        return Client(transport, read_timeout_seconds=300)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def _call(client: Client, name: str, arguments: dict) -> dict:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def _error(client: Client, name: str, arguments: dict) -> str:
    result = await client.call_tool(name, arguments)
    assert result.is_error, f"{name} {arguments} should be refused: {result.structured_content}"
    return result.content[0].text


async def exercise_every_tool(client: Client) -> None:
    """List the tools, resources and prompts, and call every tool once with real input."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == EXPECTED_TOOLS
    for tool in tools.values():
        assert tool.output_schema and tool.output_schema.get("type") == "object", tool.name
        assert tool.description
    assert tools["check"].input_schema["properties"]["language"]["anyOf"][0]["enum"] == ["python", "sql", "yaml", "json"]

    checked = await _call(client, "check", {"paths": [PIPELINE]})
    assert checked["files"][0]["path"] == PIPELINE
    assert {f["rule"] for f in checked["files"][0]["findings"]} & {"SE205"}
    pasted = await _call(client, "check", {"code": 'spark.readStream.format("kafka").load()', "language": "python"})
    assert pasted["files"][0]["path"] == "pasted.py" and pasted["files"][0]["findings"]

    health = await _call(client, "diagnose", {"path": "progress/slow-sink.json"})
    assert health["healthy"] is False and health["files"][0]["queries"][0]["verdict"] == "unhealthy"
    assert "falling-behind" in health["files"][0]["queries"][0]["causes"]
    text = (FIXTURES / "progress" / "healthy.json").read_text(encoding="utf-8")
    assert (await _call(client, "diagnose", {"progress": text}))["healthy"] is True

    found = await _call(client, "search_knowledge", {"query": "rows dropped by the watermark", "k": 3})
    assert len(found["results"]) == 3 and found["results"][0]["id"].startswith(("article:", "knowledge:"))
    answer = await _call(client, "ask", {"question": "How do I limit how many Kafka offsets one micro-batch reads?"})
    assert answer["found"] and "maxOffsetsPerTrigger" in answer["answer"] and answer["sources"]
    assert "[1]" in answer["answer"]

    commands = await _call(client, "list_commands", {})
    assert "kafka-connector" in {c["name"] for c in commands["commands"]}
    described = await _call(client, "describe_command", {"name": "*kafka-connector"})
    assert described["templates"] and described["checklists"] and described["questions"]

    rendered = await _call(client, "render_template", {
        "name": "kafka-connector-config-tmpl.json",
        "values": {"servers": "broker-1:9093", "topic": "orders", "jaas": FAKE_KEY, "sasl_password": FAKE_KEY}})
    config = json.loads(rendered["text"])
    assert config["kafka.bootstrap.servers"] == "broker-1:9093" and config["subscribe"] == "orders"
    assert FAKE_KEY not in json.dumps(rendered), "a secret came back in the rendered template"
    assert rendered["secrets_replaced"]["jaas"] in rendered["text"] and rendered["notices"]
    assert rendered["unknown"] == ["sasl_password"] and rendered["missing"] == []

    # A secret in pasted code never comes back: the linter redacts its evidence, checklist evidence is withheld.
    leaky = f'spark.readStream.format("kafka").option("kafka.sasl.jaas.config", "{FAKE_KEY}").load()\n'
    flagged = await _call(client, "check", {"code": leaky, "language": "python"})
    assert "security" in {f["topic"] for f in flagged["files"][0]["findings"]}
    assert FAKE_KEY not in json.dumps(flagged)
    assert FAKE_KEY not in json.dumps(await _call(client, "run_checklist", {"checklist": "source-connector",
                                                                            "code": leaky, "language": "python"}))

    judged = await _call(client, "run_checklist", {"checklist": "exactly-once", "path": SINK})
    assert judged["checklist"] == "exactly-once-checklist" and judged["targets"] == [SINK]
    assert {i["status"] for i in judged["items"]} <= {"PASS", "FAIL", "PARTIAL", "N/A", "REVIEW"}
    assert judged["counts"]["FAIL"] >= 1 and any(i["evidence"] for i in judged["items"] if i["status"] == "FAIL")

    resources = {str(r.uri) for r in (await client.list_resources()).resources}
    assert {"streaming-engineer://articles/kafka", "streaming-engineer://templates/kafka-connector-config-tmpl.json",
            "streaming-engineer://checklists/exactly-once-checklist"} <= resources
    article = await client.read_resource("streaming-engineer://articles/kafka")
    assert "maxOffsetsPerTrigger" in article.contents[0].text
    prompts = {p.name for p in (await client.list_prompts()).prompts}
    assert {"kafka-connector", "dlt-streaming"} <= prompts and "help" not in prompts
    prompt = await client.get_prompt("kafka-connector", {"details": "topic orders on Confluent Cloud"})
    assert "*kafka-connector" in prompt.messages[0].content.text
    assert "topic orders on Confluent Cloud" in prompt.messages[0].content.text


async def refusals(client: Client) -> None:
    """Bad arguments, paths outside the root, oversize input: tool errors, and the server keeps serving."""
    assert "outside the allowed root" in await _error(client, "check", {"paths": ["../../agent/cli.py"]})
    assert "outside the allowed root" in await _error(client, "check", {"paths": [str(ROOT / "pyproject.toml")]})
    assert "outside the allowed root" in await _error(client, "run_checklist",
                                                      {"checklist": "exactly-once", "path": "/etc/passwd"})
    assert "outside the allowed root" in await _error(client, "diagnose", {"path": "../../README.md"})
    assert "no such file" in await _error(client, "check", {"paths": ["pipelines/nope.py"]})
    assert "valid list" in await _error(client, "check", {"paths": "not-a-list"})
    assert "either paths" in await _error(client, "check", {})
    assert "language" in await _error(client, "check", {"code": "x = 1"})
    assert await _error(client, "check", {"code": "x" * 2_100_000, "language": "python"})
    assert "unknown rule" in await _error(client, "check", {"paths": [PIPELINE], "ignore": ["SE999"]})
    assert "StreamingQueryProgress" in await _error(client, "diagnose", {"progress": '{"hello": "world"}'})
    assert "Empty query" in await _error(client, "search_knowledge", {"query": "   "})
    assert await _error(client, "search_knowledge", {"query": "watermark", "k": 0})
    assert "no command" in await _error(client, "describe_command", {"name": "kafka-conector"})
    assert "did you mean kafka-connector" in await _error(client, "describe_command", {"name": "kafka-conector"})
    assert "no template" in await _error(client, "render_template", {"name": "nope.json"})
    invalid = await _error(client, "render_template", {"name": "kafka-connector-config-tmpl.json",
                                                       "values": {"servers": "b:9093", "topic": "two words!"}})
    assert "invalid values" in invalid and "topic:" in invalid and "servers" not in invalid
    late = await _error(client, "render_template", {"name": "watermark-config-tmpl.yaml", "values": {"delay": "soon"}})
    assert "delay:" in late and "duration" in late
    assert "no single checklist" in await _error(client, "run_checklist", {"checklist": "zzz", "code": "x"})
    assert "Unknown tool" in await _error(client, "no_such_tool", {})
    # Still serving after all of that.
    assert (await _call(client, "list_commands", {}))["commands"]


def test_stdio_lists_and_calls_every_tool_and_refuses_bad_arguments(indexed_home: Path) -> None:
    async def main() -> None:
        async with _stdio(indexed_home) as client:
            await exercise_every_tool(client)
            await refusals(client)

    asyncio.run(main())


def test_check_returns_the_same_findings_as_the_cli(indexed_home: Path) -> None:
    files = [PIPELINE, "pipelines/sql/orders_streaming_tables.sql", "pipelines/config/kafka_orders_connector.json"]

    async def main() -> list[dict]:
        async with _stdio(indexed_home) as client:
            return (await _call(client, "check", {"paths": files}))["files"]

    served = asyncio.run(main())
    result = subprocess.run([sys.executable, "-m", "agent.cli", "check", "--format", "json", *files], cwd=FIXTURES,
                            env=_env(indexed_home), capture_output=True, timeout=300, check=False)
    assert result.returncode == 1, result.stderr.decode()
    expected = json.loads(result.stdout)["files"]
    assert [f["path"] for f in served] == [f["path"] for f in expected] == files
    for mine, theirs in zip(served, expected, strict=True):
        assert mine["findings"] == theirs["findings"]
        assert mine["findings"], f"{mine['path']}: the fixture should have findings"


def test_streamable_http_lists_and_calls_every_tool_and_refuses_bad_arguments(indexed_home: Path) -> None:
    server = HttpServer(indexed_home)
    try:
        async def main() -> None:
            async with server.client() as client:
                await exercise_every_tool(client)
                await refusals(client)

        asyncio.run(main())
    finally:
        server.stop()


def test_streamable_http_with_a_token_refuses_requests_without_it(indexed_home: Path) -> None:
    import httpx2

    server = HttpServer(indexed_home, "--token", "s3cret-token-for-tests")
    try:
        assert httpx2.post(server.url, json={}, timeout=30).status_code == 401
        wrong = httpx2.post(server.url, json={}, headers={"Authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 401

        async def main() -> None:
            async with server.client({"Authorization": "Bearer s3cret-token-for-tests"}) as client:
                assert (await _call(client, "list_commands", {}))["commands"]

        asyncio.run(main())
    finally:
        server.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10"])
def test_http_beyond_loopback_needs_a_token(indexed_home: Path, host: str) -> None:
    result = cli("mcp", "--http", "--host", host, home=indexed_home, timeout=120)
    assert result.returncode == 2
    assert "needs a token" in result.stderr.decode()


def test_databricks_app_mode_only_inside_databricks_apps(indexed_home: Path) -> None:
    result = cli("mcp", "--databricks-app", home=indexed_home, timeout=120)
    assert result.returncode == 2
    assert "DATABRICKS_APP_PORT" in result.stderr.decode()


def test_app_yaml_starts_the_mcp_server_as_a_databricks_app() -> None:
    import yaml

    from agent.cli import build_parser

    app = yaml.safe_load((ROOT / "app.yaml").read_text(encoding="utf-8"))
    command = app["command"]
    assert command[:3] == ["uv", "run", "streaming-engineer"]
    args = build_parser().parse_args(command[3:])
    assert args.command == "mcp" and args.databricks_app
    assert "uv" in (ROOT / "requirements.txt").read_text(encoding="utf-8").split()


def test_behind_the_databricks_proxy_only_forwarded_requests_are_served(indexed_home: Path, tmp_path: Path) -> None:
    """The gate of ``--databricks-app``, served on 127.0.0.1 in this process."""
    import threading

    import httpx2
    import uvicorn

    from agent.mcp_server import build_server, http_app

    port = _free_port()
    app = http_app(build_server(FIXTURES, indexed_home), host="0.0.0.0", behind_databricks_proxy=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/mcp"
        assert httpx2.post(url, json={}, timeout=30).status_code == 401

        async def main() -> None:
            # The proxy rewrites Host to the app's URL and adds the user headers.
            headers = {"X-Forwarded-Email": "someone@example.com", "Host": "mcp-streaming-engineer.example.com"}
            transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
            async with Client(transport, read_timeout_seconds=120) as client:
                described = await _call(client, "describe_command", {"name": "dlt-streaming"})
                assert described["checklists"]

        asyncio.run(main())
    finally:
        server.should_exit = True
        thread.join(timeout=30)
