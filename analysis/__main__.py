"""``python -m analysis EXPERIMENT_DIR [--by COLUMN] [--objectives delta_mtl:max,params:min] [--out DIR]``,
or ``python -m analysis --list STORAGE``.

Writes the report folder (default ``EXPERIMENT_DIR/report/``) and prints its path. ``--compact`` instead
rewrites ``results.parquet`` and ``epochs.parquet`` from the per-trial fragments (``results/``,
``epochs/``) of a sweep still running or whose driver was killed. ``--list STORAGE`` prints the experiments
under a storage folder with their state (``analysis.experiments``). Unreadable input (a missing folder, no
results file, corrupt Parquet) and bad arguments are reported as one line on stderr with exit code 2, not as a
traceback. Results that cannot be compared (nothing learned, no baselines for delta_mtl) still give a report,
whose first lines say why, and exit code 0.
"""

from __future__ import annotations

import argparse
import sys

from analysis.load import AnalysisError, compact


def _budgets(text: str | None) -> dict[str, list[float]] | None:
    if not text:
        return None
    out: dict[str, list[float]] = {}
    for part in text.split(";"):
        name, _, values = part.partition("=")
        try:
            out[name.strip()] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError as e:
            raise AnalysisError(f"--budgets {text!r}: write it as 'params=1e5,2e5;flops=1e9'") from e
    return out


def _list(p: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.list is None:
        p.error("give an experiment folder, or --list STORAGE")
    from analysis.experiments import list_main

    try:
        print(list_main(args.list))
    except AnalysisError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis", description="Pareto report of a sweep's results.")
    p.add_argument("experiment_dir", nargs="?", help="experiment folder holding results.parquet (or the file itself)")
    p.add_argument("--list", metavar="STORAGE", default=None, help="list the experiments under STORAGE, with state")
    p.add_argument(
        "--by", default="flow_width", help="column(s) to group fronts by, comma-separated (default flow_width)"
    )
    p.add_argument(
        "--objectives",
        default="delta_mtl:max,params:min",
        help="name[:max|min],... (aliases: params, flops, latency; default delta_mtl:max,params:min)",
    )
    p.add_argument("--budgets", default=None, help="cost budgets, e.g. 'params=1e5,2e5' (default: cost quartiles)")
    p.add_argument("--trial", default=None, help="trial whose topology is drawn (default: best front trial)")
    p.add_argument("--out", default=None, help="report folder (default EXPERIMENT_DIR/report)")
    p.add_argument(
        "--compact",
        action="store_true",
        help="only rewrite results.parquet and epochs.parquet from the per-trial fragments",
    )
    args = p.parse_args(argv)
    if args.list is not None or args.experiment_dir is None:
        return _list(p, args)
    if args.compact:
        try:
            rows = compact(args.experiment_dir)
        except AnalysisError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(", ".join(f"{name}: {n} rows" for name, n in rows.items()) or "no fragments: nothing to compact")
        return 0
    from analysis.report import write_report  # after parsing: --help stays fast

    by = [c.strip() for c in args.by.split(",") if c.strip()]
    try:
        out = write_report(
            args.experiment_dir,
            by=by if len(by) > 1 else by[0],
            objectives=args.objectives,
            out=args.out,
            budgets=_budgets(args.budgets),
            trial=args.trial,
        )
    except AnalysisError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
