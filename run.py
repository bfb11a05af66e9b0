"""Command line: a Ray Tune sweep (default), one trial without Ray (--trial), or a resumed sweep (--resume).

    python run.py                                   # sweep of configs/default.yaml on this machine
    python run.py --config configs/ablation_flow_width.yaml [--address auto] [--storage s3://b/p]
    python run.py --resume [--name NAME]            # continue an interrupted sweep
    python run.py --trial --preset tiny --out /tmp/t [--config FILE] [--set key=value ...]
    python run.py --trial --out /tmp/t --resume     # continue that trial with its own config.json
    python run.py --dry-run [--config FILE] [--set key=value ...] [--preset P]   # list the trials, run nothing
    python run.py --eval TRIAL_DIR [--set data.root=...]   # re-evaluate a finished trial's compact net (JSON line)

Exit codes (docs/sweeps.md, "Fault tolerance"): 0 every trial finished, early-stopped or diverged, and the report
was written (or --no-report); 1 a trial errored, no results, or the report failed (the last line says
which); 2 bad input (one line naming the file or key and the fix); 130 interrupted (Ctrl-C), with the
``--resume`` command to continue.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trial", action="store_true", help="run one trial without Ray")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted sweep (Tuner.restore), or with --trial the one in --out",
    )
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
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="sweep: check the sweep file and list its trials and what stage reuse shares; nothing runs",
    )
    p.add_argument(
        "--eval",
        default=None,
        metavar="TRIAL_DIR",
        help="evaluate a finished trial's compact network on the validation split; prints one JSON line of metrics",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="more output: --trial adds every metric, the squeeze loss and seconds to each epoch line and the table",
    )
    return p.parse_args(argv)


def trial_config(args: argparse.Namespace):
    """Config of a single trial: defaults <- preset <- the file's `config:` section <- --set. ``--resume`` with
    none of --config, --preset, --set: the trial's own config.json in --out."""
    from supernet.config import ConfigError, build_config, from_dict, load_yaml, parse_set

    saved = Path(args.out) / "config.json"
    if args.resume and not (args.config or args.preset or args.overrides) and saved.is_file():
        try:
            return from_dict(json.loads(saved.read_text()))
        except ConfigError:
            raise
        except (ValueError, OSError) as e:
            raise ConfigError(
                f"{saved} is unreadable ({type(e).__name__}: {e}); give the trial's --config/--set to resume it"
            ) from None
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
    """The exit code of a sweep (docs/sweeps.md, "Fault tolerance"): 130 interrupted, 1 an errored trial, no results
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


def run_one_trial(args: argparse.Namespace) -> int:
    """--trial: one trial in ``--out``, its epoch lines, then the table of what it learned."""
    from supernet.config import ConfigError
    from supernet.stages import stage_epochs
    from supernet.trial import LocalHooks, result_lines, run_trial

    if not args.out:
        raise ConfigError("--trial needs --out DIR (where config.json, arch_spec.json, ... go)")
    cfg = trial_config(args)
    resume = trial_resume_state(Path(args.out), args.resume)
    hooks = LocalHooks(args.out, epochs=stage_epochs(cfg), detail=args.verbose)
    summary = run_trial(cfg, args.out, hooks, resume=resume)
    print("\n".join(result_lines(summary, args.out, detail=args.verbose)))
    return EXIT_OK


def run_sweep(args: argparse.Namespace) -> int:
    from supernet.config import ConfigError, parse_set
    from tune.launch import launch

    if args.resume and (args.preset or args.overrides):
        raise ConfigError(
            "--resume continues a sweep with the config it started with (its sweep.yaml), so --preset and --set "
            "would be ignored: leave them out, or start a new sweep under another --name"
        )

    outcome = launch(
        args.config,
        resume=args.resume,
        name=args.name,
        storage=args.storage,
        address=args.address,
        preset=args.preset,
        overrides=parse_set(args.overrides),
        verbose=args.verbose,
    )
    report = None if args.no_report or outcome.interrupted else write_report(outcome.exp_path, outcome.by)
    return sweep_exit(outcome, report)


# ----------------------------------------------------------------------------- --dry-run

STAGE_NOUNS = {"warmup": "warm-ups", "search": "searches"}  # plural of each reusable stage, for the summary line
POINT_COLUMNS = ("trial.mode", "trial.single_task", "trial.seed")  # shown in columns of their own


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def trial_rows(sweep, points: list[dict], cfgs: list) -> list[str]:
    """One line per fixed trial: number, mode, task (single_task), seed, and the values it sets beyond the
    sweep's shared config (its grid point; baselines run at the shared config)."""
    rows = [["#", "mode", "task", "seed", "swept values"]]
    for i, (point, cfg) in enumerate(zip(points, cfgs)):
        order = [*sweep.axes, *point]  # the sweep file's axis order, then the rest (a random_arch draw)
        shown = sorted((k for k in point if k not in POINT_COLUMNS), key=order.index)
        values = " ".join(f"{k}={point[k]}" for k in shown) or "(shared config)"
        task = cfg.trial.single_task if cfg.trial.mode == "single_task" else ""
        rows.append([str(i + 1), cfg.trial.mode, task or "", str(cfg.trial.seed), values])
    return _columns(rows)


def stage_reuse(cfgs: list) -> dict[str, tuple[int, int]]:
    """{reusable stage: (distinct runs, reused)} over the trials of ``cfgs``: trials whose stage has the same
    ``supernet.store.stage_key`` share one run of it through the stage cache."""
    from supernet.stages import REUSABLE_STAGES, plan
    from supernet.store import stage_key

    keys: dict[str, list[str]] = {s: [] for s in REUSABLE_STAGES}
    for cfg in cfgs:
        for stage in plan(cfg):
            if stage.reusable:
                keys[stage.name].append(stage_key(cfg, stage.name))
    return {s: (len(set(k)), len(k) - len(set(k))) for s, k in keys.items() if k}


def reuse_line(reuse: dict[str, tuple[int, int]], uri: bool) -> str:
    """``stage reuse: 6 warm-ups, 8 searches run (6 warm-ups reused)``."""
    if uri:
        return "stage reuse: off (the experiment lives at a URI): every trial computes every stage"
    ran = ", ".join(f"{n} {STAGE_NOUNS.get(s, s)}" for s, (n, _) in reuse.items())
    reused = ", ".join(f"{r} {STAGE_NOUNS.get(s, s)}" for s, (_, r) in reuse.items() if r)
    return f"stage reuse: {ran or 'nothing'} run ({f'{reused} reused' if reused else 'nothing reused'})"


def count_line(cfgs: list, sweep) -> str:
    """``12 trials: 8 supernet, 3 single_task, 1 hard_sharing`` (optuna: + the trials it proposes)."""
    modes: dict[str, int] = {}
    for cfg in cfgs:
        modes[cfg.trial.mode] = modes.get(cfg.trial.mode, 0) + 1
    by_mode = ", ".join(f"{n} {m}" for m, n in modes.items())
    if sweep.search == "grid":
        return f"{len(cfgs)} trials: {by_mode or 'none'}"
    axes = "; ".join(f"{k} {kind} {values}" for k, (kind, values) in sweep.axes.items())
    fixed = f"{len(cfgs)} fixed ({by_mode}), " if cfgs else ""
    return (
        f"{len(cfgs) + sweep.num_samples} trials: {fixed}{sweep.num_samples} {sweep.config().trial.mode} trials "
        f"proposed by Optuna at run time (sampler {sweep.sampler} seeded {sweep.seed}, trial.seed "
        f"{sweep.seeds[0]}; axes: {axes or 'none'})"
    )


def dry_run(args: argparse.Namespace) -> int:
    """--dry-run: the sweep as ``launch`` would run it (the same file, --preset, --set, and the same check of
    every fixed trial), listed; no Ray, no experiment folder."""
    from analysis.schema import is_uri
    from supernet.config import ConfigError, parse_set
    from tune.launch import DEFAULT_CONFIG, check_points
    from tune.space import parse_sweep, sweep_doc

    if args.trial or args.resume:
        raise ConfigError("--dry-run lists a sweep's trials; it does not combine with --trial or --resume")
    config = args.config or DEFAULT_CONFIG
    sweep = parse_sweep(sweep_doc(config, args.name, args.preset, parse_set(args.overrides)))
    check_points(sweep)
    points = sweep.points()
    cfgs = [sweep.config(p) for p in points]
    print(f"sweep {sweep.name} ({sweep.search} search, preset {sweep.preset or 'none'}) from {config}:")
    if points:
        print("\n".join(trial_rows(sweep, points, cfgs)))
    print(count_line(cfgs, sweep))
    line = reuse_line(stage_reuse(cfgs), is_uri(args.storage or ""))
    print(line if sweep.search == "grid" else f"{line} among the fixed trials; Optuna's trials share at run time")
    print("dry run: nothing started")
    return EXIT_OK


def run_eval(args: argparse.Namespace) -> int:
    """``--eval TRIAL_DIR``: the trial's per-task validation metrics, as one JSON object on the last line."""
    import json

    from supernet.config import parse_set
    from supernet.inference import eval_main

    print(json.dumps(eval_main(args.eval, parse_set(args.overrides)), sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from supernet.config import ConfigError, DataError

    try:
        if args.dry_run:
            return dry_run(args)
        if args.eval:
            return run_eval(args)
        return run_one_trial(args) if args.trial else run_sweep(args)
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
