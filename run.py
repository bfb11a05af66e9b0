"""Command line: a Ray Tune sweep (default), one trial without Ray (--trial), or a resumed sweep (--resume).

    python run.py                                   # sweep of configs/default.yaml on this machine
    python run.py --config configs/ablation_flow_width.yaml [--address auto] [--storage s3://b/p]
    python run.py --resume [--name NAME]            # continue an interrupted sweep
    python run.py --trial --preset tiny --out /tmp/t [--config FILE] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "default.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trial", action="store_true", help="run one trial without Ray")
    p.add_argument("--resume", action="store_true", help="resume an interrupted sweep (Tuner.restore)")
    p.add_argument("--config", default=None, help="YAML file (default: configs/default.yaml for sweeps)")
    p.add_argument("--preset", default=None, help="named preset, e.g. tiny")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set model.flow_width=3 (repeatable)")
    p.add_argument("--out", default=None, help="--trial: output folder")
    p.add_argument("--name", default=None, help="sweep: experiment name (default: from the config file)")
    p.add_argument("--storage", default=None, help="sweep: results root (path, NFS path or s3://, gs:// URI)")
    p.add_argument("--address", default=None, help="sweep: HOST:PORT of a Ray cluster's head (or RAY_ADDRESS); its token "
                   "is read from ~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH")
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


def write_report(exp_path: str, by: str) -> None:
    """The analysis report of a finished sweep (``analysis``); a report problem never hides the results."""
    if "://" in exp_path:
        print("(report skipped: the experiment lives at a URI; run `python -m analysis` on a local copy)")
        return
    try:
        from analysis.report import write_report as _write

        print(f"report: {_write(exp_path, by=by)}")
    except Exception as e:  # noqa: BLE001
        print(f"warning: the analysis report failed ({type(e).__name__}: {e}); results are in {exp_path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from supernet.config import ConfigError, DataError

    try:
        if args.trial:
            from supernet.trial import LocalHooks, load_checkpoint, run_trial

            if not args.out:
                raise ConfigError("--trial needs --out DIR (where config.json, arch_spec.json, ... go)")
            cfg = trial_config(args)
            ckpt = Path(args.out) / "checkpoint.pt"
            resume = load_checkpoint(ckpt) if args.resume and ckpt.is_file() else None
            summary = run_trial(cfg, args.out, LocalHooks(args.out), resume=resume)
            p = summary["params"]
            print(f"done: compact params {p['union']:,} (full supernet {p['supernet']:,}); files in {args.out}")
            return 0
        from supernet.config import parse_set
        from tune.launch import launch

        exp_path, by = launch(args.config, resume=args.resume, name=args.name, storage=args.storage,
                              address=args.address, preset=args.preset, overrides=parse_set(args.overrides))
        if not args.no_report:
            write_report(exp_path, by)
        return 0
    except (ConfigError, DataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        from supernet.stages import DivergenceError

        if isinstance(e, DivergenceError):
            print(f"error: training diverged: {e}\n(files written so far are kept in {args.out})", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
