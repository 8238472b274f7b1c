"""Compare `streaming-engineer check` with two PyPI linters on the pipeline corpus.

The PyPI linters are NOT project dependencies. Install them somewhere else to
measure, e.g.::

    python -m venv /tmp/lintcmp && /tmp/lintcmp/bin/pip install pyspark-antipattern databricks-labs-pylint
    python scripts/lint_compare.py --bin-dir /tmp/lintcmp/bin

For every corpus file it prints what each tool reports, then a summary: our
precision/recall against ``expected.yaml``; for the other tools (which have no
streaming rules to score against the same expectations) how many expected
streaming issues they flag *anything* on the same line — a generous upper
bound of their recall — and how much they report on the clean files.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.lint import check_paths  # noqa: E402
from tools.lint.model import ACTIONABLE  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;]*m")
ANTIPATTERN_HEAD = re.compile(r"^(?:error|warning)\[(?P<rule>[A-Z]+\d+)\]")
ANTIPATTERN_AT = re.compile(r"-->\s+(?P<path>.+?):(?P<line>\d+):\d+")
# The databricks-labs-pylint checkers' own messages (pylint's generic ones are left out).
DBX_MESSAGES = (
    "notebooks-too-many-cells,spark-outside-function,use-display-instead-of-show,dead-code,dbutils-fs-cp,"
    "dbutils-fs-head,dbutils-fs-ls,dbutils-fs-mount,dbutils-credentials,dbutils-notebook-run,pat-token-leaked,"
    "internal-api,legacy-cli,notebooks-percent-run,missing-data-security-mode,unsupported-runtime,"
    "incompatible-with-uc,no-spark-argument-in-function"
)

Hit = tuple[str, int, str]  # (relative path, line, rule)


def find_tool(name: str, bin_dir: str | None) -> str | None:
    if bin_dir:
        candidate = Path(bin_dir) / name
        return str(candidate) if candidate.exists() else None
    return shutil.which(name) or (str(Path(sys.executable).parent / name) if (Path(sys.executable).parent / name).exists()
                                  else None)


def run_antipattern(exe: str, corpus: Path) -> tuple[list[Hit], str]:
    done = subprocess.run([exe, "check", "."], cwd=corpus, capture_output=True, text=True, check=False,
                          env={**os.environ, "NO_COLOR": "1"}, timeout=600)
    text = ANSI.sub("", done.stdout + done.stderr)
    hits: list[Hit] = []
    rule = None
    for line in text.splitlines():
        head = ANTIPATTERN_HEAD.match(line.strip())
        if head:
            rule = head.group("rule")
            continue
        at = ANTIPATTERN_AT.search(line)
        if at and rule:
            hits.append((Path(at.group("path")).as_posix().removeprefix("./"), int(at.group("line")), rule))
            rule = None
    summary = next((ln for ln in text.splitlines() if ln.startswith("Checked")), "")
    return hits, summary


def run_dbx_pylint(exe: str, corpus: Path) -> tuple[list[Hit], str]:
    files = sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*.py"))
    done = subprocess.run(
        [exe, "--load-plugins=databricks.labs.pylint.all", "--disable=all", f"--enable={DBX_MESSAGES}",
         "--output-format=json", *files],
        cwd=corpus, capture_output=True, text=True, check=False, timeout=600,
    )
    messages = json.loads(done.stdout or "[]")
    hits = [(Path(m["path"]).as_posix(), int(m["line"]), m["symbol"]) for m in messages]
    return hits, f"pylint exit status {done.returncode}, {len(files)} Python files"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(ROOT / "tests" / "fixtures" / "pipelines"))
    parser.add_argument("--bin-dir", help="folder holding the pyspark-antipattern and pylint executables")
    args = parser.parse_args()
    corpus = Path(args.corpus).resolve()
    import yaml

    expected = yaml.safe_load((corpus / "expected.yaml").read_text(encoding="utf-8"))["files"]
    ours = {Path(r.path).relative_to(corpus).as_posix(): r for r in check_paths([corpus])
            if not r.path.endswith("expected.yaml")}

    tools: dict[str, list[Hit]] = {}
    notes: dict[str, str] = {}
    for name, exe_name, runner in (("pyspark-antipattern", "pyspark-antipattern", run_antipattern),
                                   ("databricks-labs-pylint", "pylint", run_dbx_pylint)):
        exe = find_tool(exe_name, args.bin_dir)
        if exe is None:
            notes[name] = "not installed (see this script's docstring)"
            continue
        tools[name], notes[name] = runner(exe, corpus)

    print(f"{'file':48} {'expected':>8} {'ours ok/rep':>11}  " + "  ".join(f"{n:>24}" for n in tools))
    tp = reported = relevant = 0
    line_hits = Counter()
    clean_noise = Counter()
    for rel in sorted(expected):
        want = {(f["rule"], f["status"], f["line"]) for f in expected[rel]["findings"]}
        got = {(f.rule, f.status, f.line) for f in ours[rel].findings if f.status in ACTIONABLE}
        tp, reported, relevant = tp + len(got & want), reported + len(got), relevant + len(want)
        cells = []
        for name, hits in tools.items():
            mine = [h for h in hits if h[0] == rel]
            lines = {h[1] for h in mine}
            line_hits[name] += sum(1 for f in expected[rel]["findings"] if f["line"] in lines)
            if expected[rel]["clean"]:
                clean_noise[name] += len(mine)
            rules = ",".join(sorted({h[2] for h in mine}))[:18]
            cells.append(f"{len(mine):>3} {rules:>20}")
        print(f"{rel:48} {len(want):>8} {len(got & want):>5}/{len(got):<5}  " + "  ".join(cells))

    print()
    print(f"streaming-engineer check: precision {tp / max(reported, 1):.3f}, recall {tp / max(relevant, 1):.3f} "
          f"({tp} of {relevant} expected findings, {reported} reported)")
    clean_files = [r for r, e in expected.items() if e["clean"]]
    ours_clean = sum(1 for r in clean_files for f in ours[r].findings if f.status in ACTIONABLE)
    print(f"  findings on the {len(clean_files)} clean files: {ours_clean}")
    for name, hits in tools.items():
        print(f"{name}: {len(hits)} findings ({notes[name]}); rules: "
              + ", ".join(f"{rule}×{n}" for rule, n in Counter(h[2] for h in hits).most_common()))
        print(f"  expected streaming findings with any {name} finding on the same line: "
              f"{line_hits[name]} of {relevant} (upper bound of recall {line_hits[name] / max(relevant, 1):.3f})")
        print(f"  findings on the {len(clean_files)} clean files: {clean_noise[name]}")
    for name, note in notes.items():
        if name not in tools:
            print(f"{name}: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
