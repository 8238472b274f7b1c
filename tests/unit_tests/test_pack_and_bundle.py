"""The knowledge pack loads completely, and BMad web bundles load as packs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from knowledge.bundle import load_bundle, parse_resources
from knowledge.loader import PackError, load_pack
from tests.conftest import FIXTURES, require_seed

PACK = load_pack()


def seed_resources() -> dict[str, str]:
    """The seed bundle's resources (skips the test when the bundle is not beside the checkout)."""
    return parse_resources(require_seed().read_text(encoding="utf-8"))


def test_pack_has_everything_the_bundle_defines() -> None:
    assert len(PACK.agent.commands) == 29
    assert len(PACK.tasks) == 25 and len(PACK.templates) == 20
    assert len(PACK.checklists) == 17 and len(PACK.knowledge) == 10
    assert PACK.agent.title == "数据流工程师" and PACK.agent.icon == "🌊"
    assert len(PACK.agent.core_principles) == 5 and len(PACK.agent.definition_of_done) == 4
    for command in PACK.agent.commands:
        assert command.description.zh and command.description.en, command.name
        if command.task:
            assert command.task in PACK.tasks


def test_templates_are_the_bundles_exactly() -> None:
    resources = seed_resources()
    for path, text in resources.items():
        if "/templates/" in path:
            name = path.rsplit("/", 1)[1]
            assert PACK.templates[name].text.rstrip("\n") == text.rstrip("\n"), name


def test_every_checklist_bullet_is_an_item() -> None:
    for path, text in seed_resources().items():
        if "/checklists/" in path:
            stem = path.rsplit("/", 1)[1][:-3]
            bullets = [line[2:].strip() for line in text.splitlines() if line.startswith("- ")]
            assert [i.text.zh for i in PACK.checklists[stem].items] == bullets, stem


def test_tasks_keep_doc_output_locations_and_chinese_steps() -> None:
    for path, text in seed_resources().items():
        if "/tasks/" in path:
            stem = path.rsplit("/", 1)[1][:-3]
            location = re.search(r"docOutputLocation: (\S+)", text).group(1)
            assert PACK.tasks[stem].doc_output_location == location
            if "TBD" not in text:
                steps = [line[2:].strip().replace("\\*", "*") for line in text.split("## Steps")[1].split("## Outputs")[0]
                         .splitlines() if line.startswith("- ")]
                assert [s.zh for s in PACK.tasks[stem].steps] == steps, stem
                assert all(s.en for s in PACK.tasks[stem].steps), stem


def test_adding_a_task_needs_no_code_change(tmp_path: Path) -> None:
    import shutil

    from knowledge.loader import PACK_DIR

    copy = tmp_path / "pack"
    shutil.copytree(PACK_DIR, copy)
    (copy / "checklists" / "extra-checklist.yaml").write_text(
        "id: extra-checklist\ntitle: Extra\nsections:\n  - title: A\n    items:\n      - {id: one, zh: 一, en: One}\n",
        encoding="utf-8")
    (copy / "tasks" / "extra-task.yaml").write_text(
        "id: extra-task\ntitle: Extra Task\ndoc_output_location: docs/extra.md\npurpose: {en: Do extra}\n"
        "steps: [{en: Step one}]\nchecklists: [extra-checklist]\n", encoding="utf-8")
    agent = (copy / "agent.yaml").read_text(encoding="utf-8")
    agent = agent.replace("commands:\n", "commands:\n  - {name: extra, task: extra-task, description: {en: Extra}}\n", 1)
    (copy / "agent.yaml").write_text(agent, encoding="utf-8")
    pack = load_pack(copy)
    assert pack.command("extra").task == "extra-task" and "extra-checklist" in pack.checklists


def test_seed_bundle_loads_as_a_pack(tmp_path: Path) -> None:
    pack = load_bundle(require_seed(), tmp_path)
    assert [c.name for c in pack.agent.commands] == [c.name for c in PACK.agent.commands]
    assert len(pack.tasks) == 25 and len(pack.templates) == 20 and len(pack.checklists) == 17
    assert pack.command("kafka-connector").task == "kafka-connector-setup"
    assert pack.tasks["kafka-connector-setup"].templates == ("kafka-connector-config-tmpl.json",)


def test_fixture_bundle_is_a_different_agent(tmp_path: Path) -> None:
    pack = load_bundle(FIXTURES / "bundles" / "analyst-bundle.txt", tmp_path)
    assert pack.agent.id == "03-lakehouse-analyst" and pack.agent.icon == "📊"
    assert [c.name for c in pack.agent.commands] == ["help", "profile-table", "metric-spec", "execute-checklist", "exit"]
    assert pack.command("metric-spec").task == "define-metric"


@pytest.mark.parametrize("text, message", [
    ("just some text", "no START:/END: resource markers"),
    ("==================== START: .x/agents/a.md ====================\nbody\n", "never ends"),
    ("==================== START: .x/tasks/a.md ====================\nx\n"
     "==================== END: .x/tasks/a.md ====================\n", "no agents/"),
])
def test_broken_bundles_raise_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    bundle = tmp_path / "b.txt"
    bundle.write_text(text, encoding="utf-8")
    with pytest.raises(PackError, match=message):
        load_bundle(bundle, tmp_path / "home")


def test_binary_bundle_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "b.bin"
    bundle.write_bytes(b"\x00\x01binary")
    with pytest.raises(PackError, match="binary"):
        load_bundle(bundle, tmp_path)
