"""Command line: a Ray Tune sweep (default), one trial without Ray (--trial), or a resumed sweep (--resume).

    python run.py                                   # sweep of configs/default.yaml on this machine
    python run.py --config configs/ablation_flow_width.yaml [--address auto] [--storage s3://b/p]
    python run.py --resume [--name NAME]            # continue an interrupted sweep
    python run.py --trial --preset tiny --out /tmp/t [--config FILE] [--set key=value ...]

Exit codes (README "Fault tolerance"): 0 every trial finished, early-stopped or diverged, and the report
was written (or --no-report); 1 a trial errored, no results, or the report failed (the last line says
which); 2 bad input (one line naming the file or key and the fix); 130 interrupted (Ctrl-C), with the
``--resume`` command to continue.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trial", action="store_true", help="run one trial without Ray")
    p.add_argument("--resume", action="store_true", help="resume an interrupted sweep (Tuner.restore)")
    p.add_argument("--config", default=None, help="YAML file (default: configs/default.yaml for sweeps)")
    p.add_argument("--preset", default=None, help="named preset, e.g. tiny")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.flow_width=3 (repeatable)",
    )
    p.add_argument("--out", default=None, help="--trial: output folder")
    p.add_argument("--name", default=None, help="sweep: experiment name (default: from the config file)")
    p.add_argument("--storage", default=None, help="sweep: results root (path, NFS path or s3://, gs:// URI)")
    p.add_argument(
        "--address",
        default=None,
        help="sweep: HOST:PORT of a Ray cluster's head (or RAY_ADDRESS); its token "
        "is read from ~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH",
    )
    p.add_argument("--no-report", action="store_true", help="sweep: skip the analysis report at the end")
    return p.parse_args(argv)


def trial_config(args: argparse.Namespace):
    """Config of a single trial: defaults <- preset <- the file's `config:` section <- --set."""
    from supernet.config import build_config, load_yaml, parse_set

    overrides: dict = {}
    preset = args.preset
    if args.config:
        doc = load_yaml(args.config)
        preset = preset or doc.get("preset")
        overrides.update(doc.get("config") or {})
    overrides.update(parse_set(args.overrides))
    return build_config(preset, overrides)


def write_report(exp_path: str, by: str) -> bool:
    """The analysis report of a finished sweep (``analysis``); a report problem never hides the results.
    Returns whether a report was written."""
    from analysis.schema import is_uri, local_path

    if is_uri(exp_path):
        print("(report skipped: the experiment lives at a URI; run `python -m analysis` on a local copy)")
        return False
    try:
        from analysis.report import write_report as _write

        print(f"report: {_write(local_path(exp_path), by=by)}")
        return True
    except Exception as e:  # noqa: BLE001
        print(f"warning: the analysis report failed ({type(e).__name__}: {e}); results are in {exp_path}")
        return False


def trial_resume_state(out: Path, resume: bool) -> dict | None:
    """--trial: the checkpoint to continue from, after checking the folder; ConfigError for a bad one.

    Without --resume a folder holding a trial (its config.json) is refused: it would be overwritten. With
    --resume and no checkpoint.pt the trial starts from scratch, and says so."""
    from supernet.config import ConfigError
    from supernet.state import load_checkpoint

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder; give a folder for the trial's files")
    ckpt = out / "checkpoint.pt"
    if not resume:
        if (out / "config.json").is_file():
            raise ConfigError(
                f"--out {out} holds a trial already (config.json): continue it with --resume, or give another --out"
            )
        return None
    if not ckpt.is_file():
        print(f"note: no checkpoint at {ckpt}: starting the trial from scratch")
        return None
    try:
        return load_checkpoint(ckpt)
    except Exception as e:  # noqa: BLE001 - torch raises several kinds for a torn or foreign file
        first = (str(e).strip().splitlines() or [""])[0][:120]
        raise ConfigError(
            f"{ckpt} is unreadable ({type(e).__name__}: {first}): it is truncated or not a "
            "checkpoint; delete it to start the trial from scratch"
        ) from None


EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def sweep_exit(outcome, report: bool | None) -> int:
    """The exit code of a sweep (README "Fault tolerance"): 130 interrupted, 1 an errored trial, no results
    or a failed report, else 0 (finished, early-stopped and diverged trials are all results)."""
    counts = outcome.counts
    if outcome.interrupted:
        print(f"interrupted: continue the sweep with\n  {outcome.resume_command}")
        return EXIT_INTERRUPTED
    problems = []
    if counts.get("errored"):
        problems.append(f"{counts['errored']} trial(s) errored (see the lines above)")
    if not counts:
        problems.append("no trial results were written")
    if report is False:
        problems.append("the analysis report failed")
    if problems:
        print(f"exit code 1: {'; '.join(problems)}")
        return EXIT_FAILED
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from supernet.config import ConfigError, DataError

    outcome = None
    try:
        if args.trial:
            from supernet.trial import LocalHooks, run_trial

            if not args.out:
                raise ConfigError("--trial needs --out DIR (where config.json, arch_spec.json, ... go)")
            cfg = trial_config(args)
            resume = trial_resume_state(Path(args.out), args.resume)
            summary = run_trial(cfg, args.out, LocalHooks(args.out), resume=resume)
            p = summary["params"]
            print(f"done: compact params {p['union']:,} (full supernet {p['supernet']:,}); files in {args.out}")
            return EXIT_OK
        from supernet.config import parse_set
        from tune.launch import launch

        outcome = launch(
            args.config,
            resume=args.resume,
            name=args.name,
            storage=args.storage,
            address=args.address,
            preset=args.preset,
            overrides=parse_set(args.overrides),
        )
        report = None if args.no_report or outcome.interrupted else write_report(outcome.exp_path, outcome.by)
        return sweep_exit(outcome, report)
    except (ConfigError, DataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(
            "interrupted"
            + (
                ""
                if args.trial
                else ": continue the sweep with `python run.py --resume` and the same --name and --storage"
            ),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as e:
        from supernet.epoch import DivergenceError

        if isinstance(e, DivergenceError):
            print(f"error: training diverged: {e}\n(files written so far are kept in {args.out})", file=sys.stderr)
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
