"""Load the eval datasets (YAML) into cases, and refuse malformed ones with every problem listed.

Every ``*.yaml`` file of the datasets folder holds one suite's cases. A case
is one of four kinds, told apart by its keys:

* ``turns`` — a conversation: each turn's ``input`` (or ``paste``, a file,
  relative to the dataset, whose text is sent as the input) goes through the
  graph on a fresh thread and its ``expect`` block is checked (see
  :mod:`evals.assertions`). A turn may be a bare string (an input with no
  expectations) and may say ``restart: true`` (a new engine on the same home).
* ``question`` — a knowledge question (``kb_questions.yaml``): labelled
  ``sources`` must rank in the top k, and the answer must hold the
  ``key_facts``; an ``unanswerable`` question must be declined.
* ``lint`` — a pipeline file or text with the findings a reviewer expects.
* ``render`` — a template rendered with given values, and what the output must be.

A checklists file may also name a ``corpus`` folder (relative to the file)
whose ``expected.yaml`` lists files and their expected findings; each file
becomes a ``lint`` case. The corpus lives with the tests, so it is only
there in a checkout; without it those cases are skipped and the report says so.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evals.assertions import RENDER_KEYS, TURN_KEYS

DATASETS_DIR = Path(__file__).resolve().parent / "datasets"
SUITES = ("conversations", "knowledge", "role", "checklists", "templates")
"""The suites, in report order. A dataset file may add another by naming it."""
_FILE_SUITES = {"kb_questions": "knowledge"}
"""Files that do not say their suite (owned elsewhere) and the suite they feed."""
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
KINDS = ("conversation", "knowledge", "lint", "render")


class DatasetError(ValueError):
    """One or more dataset files are malformed; the message lists every problem."""


class _MissingFile(Exception):
    """A file a case pastes is not there (installed without the tests folder): the case is skipped."""


@dataclass(frozen=True)
class Turn:
    """One user turn of a conversation case.

    Attributes:
        input: the text sent to the graph.
        expect: the assertions on what the turn produced.
        backends: per-backend replacements of ``expect`` keys (``{"openai": {...}}``).
        restart: reopen the engine before this turn (proves a thread survives a restart).

    """

    input: str
    expect: Mapping[str, Any] = field(default_factory=dict)
    backends: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    restart: bool = False

    def expectations(self, backend: str) -> dict[str, Any]:
        """The ``expect`` block with the backend's replacements applied."""
        return {**self.expect, **(self.backends.get(backend) or {})}


@dataclass(frozen=True)
class Case:
    """One eval case.

    Attributes:
        suite: the suite it belongs to.
        id: unique within the suite.
        kind: conversation | knowledge | lint | render.
        description: what it proves, for the report.
        tags: free labels (``task``, ``zh``, ``injection``...).
        turns: the conversation (kind ``conversation``).
        spec: the kind's own fields (question, lint, render...).
        source: the dataset file it came from.
        backends: the backends it runs on (empty: all).

    """

    suite: str
    id: str
    kind: str
    description: str = ""
    tags: tuple[str, ...] = ()
    turns: tuple[Turn, ...] = ()
    spec: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    backends: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``suite/id``: unique across the run."""
        return f"{self.suite}/{self.id}"


@dataclass
class Datasets:
    """Every suite's cases, plus what could not be loaded (and why)."""

    suites: dict[str, list[Case]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def cases(self) -> list[Case]:
        """All cases, suite by suite in report order."""
        return [case for name in self.order() for case in self.suites[name]]

    def order(self) -> list[str]:
        """Suite names: the known ones first, then any others alphabetically."""
        known = [s for s in SUITES if s in self.suites]
        return known + sorted(s for s in self.suites if s not in SUITES)

    def select(self, suites: Iterable[str] | None = None, patterns: Iterable[str] | None = None,
               limit: int | None = None, backend: str | None = None) -> Datasets:
        """A subset: only these suites, ids matching any glob pattern, at most ``limit`` per suite."""
        wanted = set(suites or [])
        globs = list(patterns or [])
        chosen: dict[str, list[Case]] = {}
        for name in self.order():
            if wanted and name not in wanted:
                continue
            cases = [c for c in self.suites[name]
                     if (not globs or any(fnmatch.fnmatch(c.id, g) or fnmatch.fnmatch(c.key, g) for g in globs))
                     and (not backend or not c.backends or backend in c.backends)]
            chosen[name] = cases[:limit] if limit else cases
        return Datasets(chosen, list(self.skipped))


def load(folder: Path | str = DATASETS_DIR) -> Datasets:
    """Load every dataset file of ``folder``.

    Raises:
        DatasetError: listing every problem found (a file that does not
            parse, a case without an id, an unknown assertion...).

    """
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"no datasets folder at {root}")
    datasets = Datasets()
    problems: list[str] = []
    for path in sorted(root.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f"{path.name}: cannot read: {exc}")
            continue
        if not isinstance(data, dict):
            problems.append(f"{path.name}: the top level must be a mapping")
            continue
        suite = str(data.get("suite") or _FILE_SUITES.get(path.stem) or path.stem)
        cases = datasets.suites.setdefault(suite, [])
        if "questions" in data or "unanswerable" in data:
            cases += _knowledge_cases(path, suite, data, problems)
        for n, raw in enumerate(data.get("cases") or [], start=1):
            try:
                case = _case(path, suite, raw, n, problems)
            except _MissingFile as missing:
                datasets.skipped.append(f"{path.name}: case {raw.get('id')} skipped: {missing}")
                continue
            if case is not None:
                cases.append(case)
        if data.get("corpus"):
            cases += _corpus_cases(path, suite, str(data["corpus"]), data.get("corpus_tags") or [], problems,
                                   datasets.skipped)
    for suite, cases in datasets.suites.items():
        seen: set[str] = set()
        for case in cases:
            if case.id in seen:
                problems.append(f"{case.source}: duplicate case id {case.id!r} in suite {suite}")
            seen.add(case.id)
    if problems:
        raise DatasetError("invalid eval datasets:\n  " + "\n  ".join(problems))
    return datasets


def _knowledge_cases(path: Path, suite: str, data: Mapping[str, Any], problems: list[str]) -> list[Case]:
    cases = []
    for raw in data.get("questions") or []:
        if not isinstance(raw, dict) or not raw.get("id") or not raw.get("question") or not raw.get("sources"):
            problems.append(f"{path.name}: a question needs id, question and sources: {str(raw)[:80]}")
            continue
        spec = {"question": str(raw["question"]), "sources": [str(s) for s in raw["sources"]],
                "key_facts": [str(f) for f in raw.get("key_facts") or []], "lang": raw.get("lang", "en"),
                "answerable": True}
        cases.append(Case(suite, str(raw["id"]), "knowledge", tags=(str(raw.get("lang", "en")),), spec=spec,
                          source=path.name))
    for raw in data.get("unanswerable") or []:
        if not isinstance(raw, dict) or not raw.get("id") or not raw.get("question"):
            problems.append(f"{path.name}: an unanswerable question needs id and question: {str(raw)[:80]}")
            continue
        spec = {"question": str(raw["question"]), "sources": [], "key_facts": [], "lang": raw.get("lang", "en"),
                "answerable": False}
        cases.append(Case(suite, str(raw["id"]), "knowledge", tags=(str(raw.get("lang", "en")), "unanswerable"),
                          spec=spec, source=path.name))
    return cases


def _case(path: Path, suite: str, raw: Any, n: int, problems: list[str]) -> Case | None:
    where = f"{path.name} case {n}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    case_id = str(raw.get("id") or "")
    if not _ID_RE.match(case_id):
        problems.append(f"{where}: missing or malformed id {case_id!r}")
        return None
    where = f"{path.name}:{case_id}"
    common = {"description": str(raw.get("description") or ""), "tags": tuple(str(t) for t in raw.get("tags") or ()),
              "source": path.name, "backends": tuple(str(b) for b in raw.get("backends") or ())}
    if "turns" in raw:
        turns = []
        for m, turn in enumerate(raw.get("turns") or [], start=1):
            parsed = _turn(path, turn, f"{where} turn {m}", problems)
            if parsed is not None:
                turns.append(parsed)
        if not turns:
            problems.append(f"{where}: a conversation needs at least one turn")
            return None
        return Case(suite, case_id, "conversation", turns=tuple(turns), **common)
    if "lint" in raw:
        spec = dict(raw["lint"] or {})
        if bool(spec.get("path")) == bool(spec.get("text")):
            problems.append(f"{where}: lint needs exactly one of path or text")
            return None
        if spec.get("path"):
            spec["path"] = str((path.parent / str(spec["path"])).resolve())
        if spec.get("text") and not spec.get("name"):
            problems.append(f"{where}: lint text needs a name (its suffix tells the linter the language)")
            return None
        _check_findings(spec.get("findings") or [], where, problems)
        return Case(suite, case_id, "lint", spec=spec, **common)
    if "render" in raw:
        spec = dict(raw["render"] or {})
        if not spec.get("template"):
            problems.append(f"{where}: render needs a template")
            return None
        unknown = set(raw.get("expect") or {}) - RENDER_KEYS
        if unknown:
            problems.append(f"{where}: unknown render expectation(s) {sorted(unknown)}")
        spec["expect"] = dict(raw.get("expect") or {})
        return Case(suite, case_id, "render", spec=spec, **common)
    problems.append(f"{where}: a case needs turns, lint or render")
    return None


def _turn(path: Path, raw: Any, where: str, problems: list[str]) -> Turn | None:
    if isinstance(raw, str):
        return Turn(input=raw)
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a string or a mapping")
        return None
    if "paste" in raw:
        pasted = (path.parent / str(raw["paste"])).resolve()
        if not pasted.exists():
            raise _MissingFile(f"{raw['paste']} not found (run from a checkout to include it)")
        try:
            text = pasted.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"{where}: cannot read paste file {raw['paste']}: {exc.strerror}")
            return None
    elif "input" in raw:
        text = str(raw["input"] if raw["input"] is not None else "")
    else:
        problems.append(f"{where}: needs input or paste")
        return None
    expect = dict(raw.get("expect") or {})
    backends = {str(k): dict(v or {}) for k, v in (raw.get("backends") or {}).items()}
    for block in [expect, *backends.values()]:
        unknown = set(block) - TURN_KEYS
        if unknown:
            problems.append(f"{where}: unknown expectation(s) {sorted(unknown)}")
    return Turn(input=text, expect=expect, backends=backends, restart=bool(raw.get("restart")))


def _check_findings(findings: list[Any], where: str, problems: list[str]) -> None:
    for finding in findings:
        if not isinstance(finding, dict) or not finding.get("rule") or not finding.get("status"):
            problems.append(f"{where}: a finding needs rule and status: {finding!r}")


def _corpus_cases(path: Path, suite: str, corpus: str, tags: list[str], problems: list[str],
                  skipped: list[str]) -> list[Case]:
    folder = (path.parent / corpus).resolve()
    expected_file = folder / "expected.yaml"
    if not expected_file.is_file():
        # Installed without the tests folder: the corpus is not there to run.
        skipped.append(f"{path.name}: corpus {corpus} not found (run from a checkout to include it)")
        return []
    try:
        expected = (yaml.safe_load(expected_file.read_text(encoding="utf-8")) or {}).get("files") or {}
    except yaml.YAMLError as exc:
        problems.append(f"{path.name}: corpus expected.yaml does not parse: {exc}")
        return []
    cases = []
    for name, spec in sorted(expected.items()):
        where = f"{path.name}: corpus file {name}"
        _check_findings(spec.get("findings") or [], where, problems)
        lint = {"path": str(folder / name), "findings": list(spec.get("findings") or []),
                "pass": list(spec.get("pass") or []), "error": bool(spec.get("error")), "clean": bool(spec.get("clean"))}
        case_id = "corpus:" + name.replace("/", ":")
        cases.append(Case(suite, case_id, "lint", description=f"lint {name} ({corpus})",
                          tags=("corpus", *[str(t) for t in tags]), spec=lint, source=path.name))
    return cases
