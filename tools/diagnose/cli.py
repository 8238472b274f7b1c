"""``streaming-engineer diagnose FILE|DIR [--json] [--out DIR]``.

The main CLI mounts this subcommand with ``add_arguments`` and ``run``.
Exit codes: 0 every query healthy, 1 a query needs attention, 2 usage error
or nothing readable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tools.diagnose import FileDiagnosis, ProgressError, Settings, chart_file_name, diagnose_file, discover, parse_duration_ms
from tools.diagnose import report as reports
from tools.diagnose import slo as slos

EXIT_OK, EXIT_UNHEALTHY, EXIT_USAGE = 0, 1, 2
REPORT_NAME = "stream-health.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``diagnose`` arguments on ``parser``."""
    parser.description = (
        "Diagnose stream health from StreamingQueryProgress JSON: a query.recentProgress dump (JSON array), a "
        "StreamingQueryListener log (JSON Lines) or the Lakeflow / DLT event log's flow_progress rows. Reports "
        "falling behind (input vs processed rate), batch duration vs trigger, state growth, rows dropped by the "
        "watermark, source lag and latency-SLO compliance, each with the setting that fixes it. "
        "Exit status: 0 all healthy, 1 something needs attention, 2 usage error or nothing readable."
    )
    parser.add_argument("paths", nargs="*", metavar="FILE|DIR",
                        help="progress files, or folders to search for .json/.jsonl/.ndjson/.log files")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the Markdown report")
    parser.add_argument("--out", metavar="DIR",
                        help=f"write the report ({REPORT_NAME}) and PNG charts into DIR")
    parser.add_argument("--trigger", metavar="DURATION",
                        help="the processingTime trigger, e.g. '1 minute' (inferred from idle gaps when omitted)")
    parser.add_argument("--rate-limit", type=int, metavar="N",
                        help="maxOffsetsPerTrigger / maxFilesPerTrigger, to recognise capped batches")
    parser.add_argument("--slo", metavar="FILE",
                        help="latency-SLO YAML shaped like latency-slo-tmpl.yaml (default: the pack's template)")


def _usage_error(message: str) -> int:
    print(f"streaming-engineer diagnose: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def write_outputs(results: list[FileDiagnosis], out: Path) -> dict[tuple[str, str], dict[str, str]]:
    """Render every chart into ``out`` and return the links by (file, query), relative to ``out``."""
    from tools.diagnose.charts import render

    out.mkdir(parents=True, exist_ok=True)
    links: dict[tuple[str, str], dict[str, str]] = {}
    for result in results:
        prefix = Path(result.path).stem
        for diagnosis in result.diagnoses:
            names = {}
            for chart, png in render(diagnosis).items():
                name = chart_file_name(prefix, diagnosis.query, chart)
                (out / name).write_bytes(png)
                names[chart] = name
            links[(result.path, diagnosis.query)] = names
    return links


def run(args: argparse.Namespace) -> int:
    """Run the diagnosis described by parsed ``args``; returns the exit code."""
    paths = list(getattr(args, "paths", None) or [])
    if not paths:
        return _usage_error("no FILE or DIR given (usage: streaming-engineer diagnose FILE|DIR [--json] [--out DIR])")
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        return _usage_error("path not found: " + ", ".join(missing))
    try:
        settings = Settings(trigger_ms=parse_duration_ms(args.trigger), rate_limit=args.rate_limit,
                            slo=slos.load(args.slo))
    except ValueError as exc:
        return _usage_error(str(exc))
    explicit = {str(Path(p)) for p in paths if Path(p).is_file()}
    results, skipped = [], []
    for path in discover(paths):
        try:
            results.append(diagnose_file(path, settings))
        except ProgressError as exc:
            if str(path) in explicit:
                return _usage_error(str(exc))
            skipped.append({"path": str(path), "reason": str(exc)})  # a folder's other JSON files
    if not results:
        return _usage_error("no stream progress found in " + ", ".join(paths))
    try:
        links = write_outputs(results, Path(args.out)) if args.out else {}
        text = reports.markdown([(r.path, r.diagnoses) for r in results], links)
        if args.out:
            (Path(args.out) / REPORT_NAME).write_text(text, encoding="utf-8")
    except OSError as exc:  # --out naming a file, a device or a folder that cannot be written
        return _usage_error(f"cannot write the report into {args.out}: {exc.strerror or exc}")
    if args.json:
        out = Path(args.out) if args.out else None
        payload = {
            "files": [{
                "path": r.path, "format": r.log.origin, "skipped_records": r.log.skipped,
                "queries": [reports.to_dict(d, {k: str(out / v) for k, v in links.get((r.path, d.query), {}).items()}
                                            if out else None) for d in r.diagnoses],
            } for r in results],
            "skipped_files": skipped,
            "report": str(Path(args.out) / REPORT_NAME) if args.out else None,
        }
        print(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        print(text, end="")
        if args.out:
            print(f"\n(report and charts written to {args.out})", file=sys.stderr)
    healthy = all(d.healthy for r in results for d in r.diagnoses)
    return EXIT_OK if healthy else EXIT_UNHEALTHY


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: parse ``argv`` and run."""
    parser = argparse.ArgumentParser(prog="streaming-engineer diagnose")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
