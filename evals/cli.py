"""``streaming-engineer eval``: run the eval suite, write the reports, exit non-zero below the thresholds.

Mounted by ``agent/cli.py`` with :func:`add_arguments` and :func:`run`.
Progress goes to stderr; the Markdown report (or ``--json``) to stdout at the
end, so a CI log ends with it whether the run passed or not.

Exit codes: 0 every threshold met, 1 below a threshold, 2 bad input (a
malformed dataset, an unknown suite, no endpoint for ``--backend openai``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_BELOW, EXIT_BAD_INPUT = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``eval``."""
    from evals.datasets import DATASETS_DIR
    from evals.metrics import THRESHOLDS_FILE

    parser.add_argument("--backend", choices=("offline", "openai"), default="offline",
                        help="offline: no model (keys hidden); openai: the endpoint configured by OPENAI_API_KEY / "
                             "OPENAI_BASE_URL / STREAMING_ENGINEER_MODEL or Azure's variables (default offline)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="run every case N times (variance with a model)")
    parser.add_argument("--suite", action="append", metavar="NAME",
                        help="only this suite (repeatable): conversations, knowledge, role, checklists, templates")
    parser.add_argument("--case", action="append", metavar="GLOB", help="only cases whose id matches (repeatable)")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N cases per suite (a quick smoke run)")
    parser.add_argument("--datasets", type=Path, default=DATASETS_DIR, metavar="DIR",
                        help="the datasets folder (default: the shipped one)")
    parser.add_argument("--thresholds", type=Path, default=THRESHOLDS_FILE, metavar="FILE",
                        help="minimum metrics (default: evals/thresholds.yaml)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="where report.json, report.md and junit.xml go (default: HOME/eval-reports/RUN-ID)")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="model responses cached by request (default: HOME/eval-cache)")
    parser.add_argument("--no-cache", action="store_true", help="always ask the model (still records tool calls)")
    parser.add_argument("--no-judge", action="store_true", help="skip the model-judged groundedness score")
    parser.add_argument("-k", "--top-k", dest="k", type=int, default=5, metavar="N",
                        help="a labelled source must rank in the top N (recall@N; default 5)")
    parser.add_argument("--keep-threads", action="store_true", help="keep the eval threads and workspaces (debugging)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the Markdown one")


@dataclass
class Outcome:
    """What :func:`evaluate_run` produced."""

    run: Any
    metrics: dict[str, dict[str, Any]]
    verdicts: list[Any]
    reports: dict[str, Path]

    @property
    def passed(self) -> bool:
        """Whether every threshold was met."""
        return all(v.ok for v in self.verdicts)


def evaluate_run(datasets: Any, home: Path, *, backend: str = "offline", repeat: int = 1, k: int = 5,
                 thresholds: Path | None = None, out: Path | None = None, cache: Path | None = None,
                 judge: bool = True, keep_threads: bool = False, progress: Any = None) -> Outcome:
    """Run ``datasets`` on the app home ``home``, judge the thresholds and write the reports.

    Raises:
        RuntimeError: ``backend`` is ``openai`` and no endpoint is configured.

    """
    import contextlib

    from evals.cache import cached_endpoint
    from evals.metrics import THRESHOLDS_FILE, evaluate, load_thresholds, suite_metrics
    from evals.report import write_reports
    from evals.runner import EvalRunner, RunOptions

    options = RunOptions(backend=backend, repeat=max(1, repeat), k=max(1, k), keep_threads=keep_threads)
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        proxy = None
        model = ""
        judge_model = None
        if backend == "openai":
            from agent.llm.backend import load_config

            folder = cache or home / "eval-cache"
            proxy = stack.enter_context(cached_endpoint(folder))
            config = load_config()
            model = config.model if config else ""
            notes.append(f"model endpoint {config.endpoint if config else '?'} through the request cache {folder}")
            if judge:
                from evals.judge import GroundednessJudge

                judge_model = GroundednessJudge()

        def on_repeat(index: int) -> None:
            # Repeats ask the model again (that is their point); a rerun of the same repeat hits the cache.
            if proxy is not None:
                proxy.salt = f"repeat-{index}" if index else ""

        runner = EvalRunner(home, options=options, judge=judge_model, progress=progress,
                            model_calls=proxy.take_tool_calls if proxy else None)
        run = runner.run(datasets, model=model, cache_stats=proxy.stats if proxy else None, notes=notes,
                         on_repeat=on_repeat)
    metrics = suite_metrics(run, k=options.k, depth=options.depth)
    verdicts = evaluate(metrics, load_thresholds(thresholds or THRESHOLDS_FILE, backend))
    folder = out or home / "eval-reports" / f"{run.run_id}-{backend}"
    reports = write_reports(folder, run, metrics, verdicts)
    return Outcome(run, metrics, verdicts, reports)


def run(args: argparse.Namespace) -> int:
    """Run the suite and report; the exit code says whether the thresholds were met."""
    import tempfile

    from agent.context import default_home
    from evals.datasets import DatasetError, load

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        datasets = load(args.datasets)
    except DatasetError as exc:
        print(f"streaming-engineer eval: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    unknown = sorted(set(args.suite or []) - set(datasets.suites))
    if unknown:
        print(f"streaming-engineer eval: error: unknown suite(s) {unknown}; there are {datasets.order()}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.repeat < 1 or (args.limit is not None and args.limit < 1):
        print("streaming-engineer eval: error: --repeat and --limit must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    selected = datasets.select(args.suite, args.case, args.limit, backend=args.backend)
    if not selected.cases():
        print("streaming-engineer eval: error: no case matches the selection", file=sys.stderr)
        return EXIT_BAD_INPUT
    home = Path(args.home) if getattr(args, "home", None) else default_home()
    progress(f"eval: {len(selected.cases())} cases in {len(selected.suites)} suites, backend {args.backend}")
    with tempfile.TemporaryDirectory(prefix="se-eval-nocache-") as scratch:
        cache = Path(scratch) if args.no_cache else args.cache
        try:
            outcome = evaluate_run(selected, home, backend=args.backend, repeat=args.repeat, k=args.k,
                                   thresholds=args.thresholds, out=args.out, cache=cache, judge=not args.no_judge,
                                   keep_threads=args.keep_threads, progress=progress)
        except RuntimeError as exc:
            print(f"streaming-engineer eval: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.json:
        print(outcome.reports["json"].read_text(encoding="utf-8"))
    else:
        print(outcome.reports["markdown"].read_text(encoding="utf-8"))
    progress("reports: " + ", ".join(str(p) for p in outcome.reports.values()))
    if not outcome.passed:
        failed = [f"{v.name} {v.value if v.value is None else round(v.value, 3)} < {v.minimum}"
                  for v in outcome.verdicts if not v.ok]
        progress("below thresholds: " + "; ".join(failed))
        return EXIT_BELOW
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m evals.cli`` (the same as ``streaming-engineer eval``)."""
    parser = argparse.ArgumentParser(prog="streaming-engineer eval", description=__doc__.splitlines()[0])
    parser.add_argument("--home", metavar="DIR", help="app folder (default $STREAMING_ENGINEER_HOME or ~/.streaming-engineer)")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
