"""Measure ``streaming-engineer check`` on real public streaming code we did not write.

The code itself never enters this repository: ``scripts/real_code_files.tsv``
lists (repository, path, commit) and this script reads each file from a git
snapshot outside the repository (``<mirrors>/<owner>+<name>/repo``, the layout a
``fetch`` of the repository leaves; the folder is ``--mirrors DIR`` or ``$REAL_CODE_MIRRORS``), writes the files
under ``--out`` (default ``/tmp/realcode``), runs the linter over them and
prints what it found. Hand judgements of findings (``scripts/real_code_judgements.tsv``:
repository, path, line, rule, status, verdict, reason) turn the counts into
precision.

Usage:
    python scripts/measure_real_code.py select --repos owner/name ... > scripts/real_code_files.tsv
    python scripts/measure_real_code.py run [--json findings.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.lint import check_paths  # noqa: E402
from tools.lint.model import ACTIONABLE  # noqa: E402

FILES = ROOT / "scripts" / "real_code_files.tsv"
JUDGEMENTS = ROOT / "scripts" / "real_code_judgements.tsv"
MIRRORS = os.environ.get("REAL_CODE_MIRRORS")
"""Folder of fetched snapshots, outside the repository (``--mirrors`` overrides it)."""
STREAMING = re.compile(
    r"readStream|writeStream|STREAMING\s+(?:LIVE\s+)?TABLE|read_stream|\bSTREAM\s*\(|cloud_files|cloudFiles"
    r"|create_streaming_table|@dlt\.table|@dp\.table|read_kafka|apply_changes",
    re.I,
)
SUFFIXES = (".py", ".sql", ".ipynb")
CONFIG_SUFFIXES = (".json", ".yml", ".yaml")
# Job / pipeline specs and connector option maps (bundles, Jobs and Pipelines API payloads, onboarding files).
CONFIG = re.compile(r"(?m)^\s*(?:resources|tasks|pipelines|jobs)\s*:|\"tasks\"\s*:|cloudFiles\.|kafka\.bootstrap")


def _git(repo_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, check=True).stdout


def _snapshot(mirrors: Path, repo: str) -> Path:
    return mirrors / repo.replace("/", "+") / "repo"


def select(repos: list[str], mirrors: Path) -> int:
    """Print the TSV list of streaming source files and job/pipeline/connector specs at each snapshot's HEAD."""
    writer = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    writer.writerow(["repository", "path", "commit"])
    for repo in repos:
        snapshot = _snapshot(mirrors, repo)
        commit = _git(snapshot, "rev-parse", "HEAD").decode().strip()
        for path in _git(snapshot, "ls-tree", "-r", "--name-only", commit).decode().splitlines():
            if not path.endswith(SUFFIXES + CONFIG_SUFFIXES) or "/.github/" in f"/{path}":
                continue
            try:
                text = _git(snapshot, "show", f"{commit}:{path}").decode("utf-8", "replace")
            except subprocess.CalledProcessError:
                continue  # left out of the snapshot (files of 4 MiB and more are not stored)
            pattern = CONFIG if path.endswith(CONFIG_SUFFIXES) else STREAMING
            if pattern.search(text):
                writer.writerow([repo, path, commit])
    return 0


def _read_list(path: Path) -> list[tuple[str, str, str]]:
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [(r["repository"], r["path"], r["commit"]) for r in rows]


def materialise(entries: list[tuple[str, str, str]], mirrors: Path, out: Path) -> dict[Path, tuple[str, str]]:
    """Write every listed file under ``out``; a map from written path to (repository, path)."""
    written: dict[Path, tuple[str, str]] = {}
    for repo, path, commit in entries:
        target = out / repo.replace("/", "+") / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_git(_snapshot(mirrors, repo), "show", f"{commit}:{path}"))
        written[target] = (repo, path)
    return written


def _read_judgements(path: Path) -> dict[tuple[str, str, int, str, str], tuple[str, str]]:
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return {(r["repository"], r["path"], int(r["line"]), r["rule"], r["status"]): (r["verdict"], r["reason"])
            for r in rows}


def run(args: argparse.Namespace) -> int:
    """Lint the listed files and print counts, precision and unjudged findings."""
    entries = _read_list(Path(args.files))
    out = Path(args.out)
    written = materialise(entries, Path(args.mirrors), out)
    started = time.perf_counter()
    results = check_paths(sorted(written))
    seconds = time.perf_counter() - started
    judgements = _read_judgements(Path(args.judgements))
    by_rule: dict[str, Counter[str]] = defaultdict(Counter)
    verdicts: dict[str, Counter[str]] = defaultdict(Counter)
    unjudged: list[dict[str, object]] = []
    dump: list[dict[str, object]] = []
    for result in results:
        repo, path = written[Path(result.path)]
        for finding in result.findings:
            if finding.status not in ACTIONABLE:
                continue
            by_rule[finding.rule][finding.status] += 1
            key = (repo, path, finding.line or 0, finding.rule, finding.status)
            row = {"repository": repo, "path": path, "line": finding.line, "rule": finding.rule,
                   "status": finding.status, "evidence": finding.evidence, "message": finding.message.split(" Fix:")[0]}
            dump.append(row)
            if key in judgements:
                verdicts[finding.status][judgements[key][0]] += 1
                verdicts[f"{finding.status}:{finding.rule}"][judgements[key][0]] += 1
            elif finding.status in ("FAIL", "PARTIAL"):
                unjudged.append(row)
    unanalysed = [r for r in results if r.error]
    partly = [r for r in results if r.warnings and not r.error]
    repos = {written[Path(r.path)][0] for r in results}
    print(f"{len(results)} files from {len(repos)} repositories; {len(unanalysed)} not analysed, "
          f"{len(partly)} analysed in part; {seconds:.2f} s ({len(results) / seconds:.0f} files/s)")
    for result in unanalysed:
        print(f"  not analysed: {written[Path(result.path)]}: {result.error}")
    for result in partly:
        print(f"  in part: {written[Path(result.path)]}: {'; '.join(result.warnings)}")
    print("\nfindings per rule (FAIL / PARTIAL / REVIEW):")
    for rule in sorted(by_rule):
        counts = by_rule[rule]
        print(f"  {rule}: {counts['FAIL']} / {counts['PARTIAL']} / {counts['REVIEW']}")
    print("\nhand judgements (true / false / debatable):")
    for status in ("FAIL", "PARTIAL"):
        counts = verdicts[status]
        judged = counts["true"] + counts["false"] + counts["debatable"]
        precision = counts["true"] / judged if judged else float("nan")
        print(f"  {status}: {judged} judged, {counts['true']} true, {counts['false']} false, "
              f"{counts['debatable']} debatable; precision {precision:.3f} (debatable counted as not true)")
    for key in sorted(k for k in verdicts if ":" in k):
        counts = verdicts[key]
        print(f"    {key}: {counts['true']} true, {counts['false']} false, {counts['debatable']} debatable")
    print(f"\n{len(unjudged)} FAIL/PARTIAL findings not judged yet")
    if args.json:
        Path(args.json).write_text(json.dumps({"findings": dump, "unjudged": unjudged}, indent=1), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: ``select`` or ``run``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pick = commands.add_parser("select", help="list the streaming files of fetched snapshots (TSV on stdout)")
    pick.add_argument("--repos", nargs="+", required=True, metavar="OWNER/NAME")
    pick.add_argument("--mirrors", default=MIRRORS, required=MIRRORS is None,
                      help="folder of snapshots (default $REAL_CODE_MIRRORS)")
    measure = commands.add_parser("run", help="lint the listed files and report")
    measure.add_argument("--files", default=str(FILES), help="TSV list (default scripts/real_code_files.tsv)")
    measure.add_argument("--judgements", default=str(JUDGEMENTS), help="TSV of hand judgements")
    measure.add_argument("--mirrors", default=MIRRORS, required=MIRRORS is None,
                         help="folder of snapshots (default $REAL_CODE_MIRRORS)")
    measure.add_argument("--out", default="/tmp/realcode", help="where the files are written (outside the repo)")
    measure.add_argument("--json", metavar="FILE", help="also write every finding as JSON")
    args = parser.parse_args(argv)
    if args.command == "select":
        return select(args.repos, Path(args.mirrors))
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
