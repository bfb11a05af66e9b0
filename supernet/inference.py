"""The trained network in hand: load a finished trial's compact network, evaluate it as the trial did, export it.

    net, cfg = load_compact("runs/default/trial_ab12")      # the fine-tuned CompactNet (eval mode) and its Config
    metrics = evaluate_compact(net, cfg)                     # == summary.json's "metrics" (the validation split)
    export_compact(net, torch.zeros(2, 3, 32, 32), "net.pt2")
    out = load_export("net.pt2")(images)                     # {task: output}, as net(images)

A trial folder is either one of ``run.py --trial`` (``checkpoint.pt``, written by ``LocalHooks``) or one of a
sweep (``<exp>/trial_<id>/checkpoint_<n>/state.pt``: Tune's checkpoints, of which an ended trial keeps its
newest, ``tune/checkpoints.py``); both hold ``TrialState.to_dict()`` (``supernet/state.py``), whose ``spec`` and
``model`` after the fine-tune stage are the compact network the final metrics were computed with. Next to it
the folder holds ``config.json`` (the full config) and ``summary.json`` (``status``, ``tasks``, ``metrics``).

Every problem with the folder is an ``InferenceError`` (a ``ConfigError``, so ``run.py`` prints it as one
``error: ...`` line with exit code 2) naming the file and what to do. No Ray here.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from .compact import CompactNet, build_compact
from .config import Config, ConfigError, build_config, from_dict
from .epoch import evaluate
from .spec import ArchSpec
from .stages import STAGE_PLAN, Run, pick_device
from .state import CHECKPOINT_VERSION, config_identity, jsonable, load_checkpoint
from .tasks import TaskSpec

# What an evaluation may change against the trial's config: where the data lives and how it is read, and the
# device. Anything else (the model, the data set's size or resolution, the stages) would either not match the
# weights or evaluate another split than the trial did.
EVAL_MAY_CHANGE = ("data.root", "data.num_workers", "data.pin_memory", "data.batch_size", "trial.device")
RUN_TRIAL = "python run.py --trial --out DIR"


class InferenceError(ConfigError):
    """The folder is not a finished trial with a compact network, or one of its files is missing or unreadable."""


# ----------------------------------------------------------------------------- the trial folder


def _read_json(path: Path, fix: str) -> dict[str, Any]:
    if not path.is_file():
        raise InferenceError(f"{path} is missing: {fix}")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InferenceError(f"{path} is unreadable ({type(e).__name__}: {e}): {fix}") from None
    if not isinstance(doc, dict):
        raise InferenceError(f"{path} does not hold a JSON object: {fix}")
    return doc


def find_checkpoint(trial_dir: str | Path) -> Path:
    """The trial's final checkpoint: ``checkpoint.pt`` (``run.py --trial``), else the newest
    ``checkpoint_<n>/state.pt`` (a sweep's trial folder; ``<n>`` is zero-padded, so names sort by age)."""
    d = Path(trial_dir)
    if (d / "checkpoint.pt").is_file():
        return d / "checkpoint.pt"
    tune_ckpts = sorted(p for p in d.glob("checkpoint_*/state.pt") if p.is_file())
    if tune_ckpts:
        return tune_ckpts[-1]
    raise InferenceError(
        f"{d / 'checkpoint.pt'} is missing (nor is there a sweep checkpoint {d}/checkpoint_<n>/state.pt): the trial's "
        f"weights are gone; run the trial again ({RUN_TRIAL})"
    )


def _trial_files(trial_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config.json, summary.json) of a finished trial; an InferenceError for anything else."""
    if not trial_dir.is_dir():
        raise InferenceError(f"trial folder {trial_dir} does not exist: give the folder a trial wrote ({RUN_TRIAL})")
    if not (trial_dir / "config.json").is_file() and not (trial_dir / "summary.json").is_file():
        raise InferenceError(
            f"{trial_dir} is not a trial folder (no config.json, no summary.json): give the --out folder of "
            f"`{RUN_TRIAL}` or a sweep's <storage>/<name>/trial_<id> folder"
        )
    config = _read_json(trial_dir / "config.json", f"the trial's config is gone; run the trial again ({RUN_TRIAL})")
    summary = _read_json(
        trial_dir / "summary.json",
        f"the trial has not finished; continue it with `python run.py --trial --resume --out {trial_dir}`",
    )
    status = summary.get("status")
    if status != "finished":
        raise InferenceError(
            f"{trial_dir / 'summary.json'} says status {status!r}, not 'finished' "
            f"({summary.get('error') or 'no error given'}): only a finished trial has fine-tuned weights; "
            "fix its config and run it again"
        )
    return config, summary


def _load_state(path: Path) -> dict[str, Any]:
    try:
        state = load_checkpoint(path)
    except Exception as e:  # noqa: BLE001 - torch raises several kinds for a torn or foreign file
        first = (str(e).strip().splitlines() or [""])[0][:120]
        raise InferenceError(
            f"{path} is unreadable ({type(e).__name__}: {first}): it is truncated or not a checkpoint; "
            f"run the trial again ({RUN_TRIAL})"
        ) from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        version = state.get("version") if isinstance(state, dict) else None
        raise InferenceError(
            f"{path} is not a trial checkpoint of this version (version {version!r}, this code reads "
            f"{CHECKPOINT_VERSION}): run the trial again with this code ({RUN_TRIAL})"
        )
    return state


def _check_state(path: Path, state: dict[str, Any], cfg: Config) -> None:
    """The checkpoint is the end of this trial (every stage of its mode done), with a compact network."""
    if state.get("config_hash") and state["config_hash"] != config_identity(cfg)["config_hash"]:
        raise InferenceError(
            f"{path} belongs to another config than {path.parent / 'config.json'} (config hashes differ): the "
            "folder mixes two trials' files; run the trial again into an empty folder"
        )
    todo = [s for s in STAGE_PLAN[cfg.trial.mode] if s not in state.get("done", [])]
    if todo:
        raise InferenceError(
            f"{path} stops before the stage(s) {todo}: it is not the trial's final checkpoint; continue the trial "
            "(`python run.py --trial --resume --out DIR`, or `python run.py --resume` for a sweep)"
        )
    if state.get("model_kind") != "compact" or not state.get("spec") or not state.get("model"):
        raise InferenceError(
            f"{path}: trial.mode {cfg.trial.mode!r} fine-tunes the {state.get('model_kind')} network, not a compact "
            "one; load_compact serves the modes supernet, random_arch, single_task and hard_sharing"
        )


def _task_specs(kinds: dict[str, str], weights: dict[str, torch.Tensor], names: list[str]) -> dict[str, TaskSpec]:
    """Each task's ``TaskSpec`` from summary.json's kinds and its head's output layer in the weights (the last
    weight of ``heads.<task>``: ``Head`` ends in the layer with ``out_channels`` outputs), so that no data set
    has to be built (nor found) to rebuild the network."""
    specs = {}
    for t in names:
        kind = kinds.get(t)
        head = [k for k in weights if k.startswith(f"heads.{t}.") and k.endswith(".weight")]
        if kind is None or not head:
            raise InferenceError(f"task {t!r} of the spec has no kind in summary.json or no head in the checkpoint")
        classes = int(weights[head[-1]].shape[0]) if kind in ("segmentation", "classification") else 0
        specs[t] = TaskSpec(t, kind, num_classes=classes)
    return specs


def load_compact(trial_dir: str | Path, map_location: str | torch.device = "cpu") -> tuple[CompactNet, Config]:
    """The compact network of a finished trial (the spec it was fine-tuned with, its final weights, eval mode)
    on ``map_location``, and the trial's config.

    The weights are read on the CPU with ``weights_only=True`` (a checkpoint cannot run code) and then moved.
    ``model.stem_weights`` (a pretrained trunk file) is not read: the checkpoint holds every weight.
    Raises ``InferenceError`` naming the file and the fix when the folder is not a finished trial, a file is
    missing or unreadable, or the trial's mode has no compact network (``full_supernet``)."""
    d = Path(trial_dir)
    config, summary = _trial_files(d)
    try:
        cfg = from_dict(config)
    except ConfigError as e:
        raise InferenceError(f"{d / 'config.json'} is not a valid config ({e}): run the trial again") from None
    path = find_checkpoint(d)
    state = _load_state(path)
    _check_state(path, state, cfg)
    spec = ArchSpec.from_dict(state["spec"])
    tasks = _task_specs(summary.get("tasks") or {}, state["model"], list(spec.task_names))
    net = build_compact(spec, dataclasses.replace(cfg.model, stem_weights=None), tasks)
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise InferenceError(f"{path}: the weights do not fit the spec ({first}); run the trial again") from None
    return net.to(torch.device(map_location)).eval(), cfg


# ----------------------------------------------------------------------------- evaluation


def evaluate_compact(
    net: CompactNet, cfg: Config, split: str = "val", data_root: str | None = None
) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} of ``net`` on ``split`` ("val" or "train") of the trial's data, computed as the trial
    computes its final metrics: the trial's data builder and loader (``supernet.stages.Run``) and its evaluation
    (``Run.evaluate``, ``supernet.epoch.evaluate``), at the trial's precision, on the device ``net`` is on.

    On "val" the result equals ``summary.json``'s ``metrics`` (up to the float reduction order of another
    thread count or device). ``data_root``: a real data set moved to another folder (``data.root``)."""
    if split not in ("val", "train"):
        raise ValueError(f"split must be 'val' or 'train', got {split!r}")
    device = next(net.parameters()).device
    # the data on the CPU side whatever the trial ran on: the device is the net's (a GPU trial evaluates on a CPU)
    overrides: dict[str, Any] = {"trial.device": "cpu"}
    if data_root is not None:
        overrides["data.root"] = str(data_root)
    run = dataclasses.replace(Run.build(build_config(None, overrides, base=cfg)), device=device)
    if split == "val":
        metrics, _ = run.evaluate(net)
    else:
        metrics, _ = evaluate(net, run.loader("train"), run.tasks, device, cfg.trial.precision)
    return metrics


def eval_main(trial_dir: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``python run.py --eval TRIAL_DIR [--set key=value ...]`` without the parsing and the printing: the per-task
    validation metrics of the trial's compact network, JSON-ready (NaN as null).

    ``overrides`` (dotted keys, as ``supernet.config.parse_set`` returns them) may change only
    ``EVAL_MAY_CHANGE``; another key is a ConfigError naming it. The device is ``trial.device`` from the
    overrides, else ``auto`` (CUDA when available), not the trial's own setting: a trial trained on a GPU is
    evaluated on a machine without one."""
    overrides = dict(overrides or {})
    bad = sorted(set(overrides) - set(EVAL_MAY_CHANGE))
    if bad:
        raise ConfigError(
            f"--eval: {', '.join(bad)} cannot change for an evaluation (the weights and the split are the trial's); "
            f"keys that may: {', '.join(EVAL_MAY_CHANGE)}"
        )
    device = pick_device(str(overrides.get("trial.device", "auto")))
    net, cfg = load_compact(trial_dir, map_location=device)
    cfg = build_config(None, overrides, base=cfg)  # validated: a bad value is a ConfigError naming the key
    return jsonable(evaluate_compact(net, cfg))


# ----------------------------------------------------------------------------- export


def export_compact(net: CompactNet, example_input: torch.Tensor, path: str | Path) -> Path:
    """Save ``net``'s eval-mode forward (``x -> {task: output}``, every task) as a ``torch.export`` program (.pt2).

    Why ``torch.export`` and not TorchScript: ``torch.jit.script`` cannot compile ``CompactNet.forward`` (it
    plans its instances with comprehensions, sets and tuples of Python data), and ``torch.jit.trace`` works but
    is deprecated in this torch and warns about the Python booleans of the plan. The network's plan depends
    only on its spec, which is fixed, so ``torch.export`` captures it as one graph; the batch dimension is
    exported dynamic (any batch size), the image size stays the example's (the size the heads upsample to).
    Export specialises a batch of 1, so a one-image example is repeated to two (only its shape matters).
    The export computes eval mode (running norm statistics); ``net``'s own mode is restored afterwards.
    Load it with :func:`load_export`."""
    path = Path(path)
    x = example_input if example_input.shape[0] >= 2 else example_input.expand(2, *example_input.shape[1:])
    was_training = net.training
    net.eval()
    try:
        program = torch.export.export(net, (x.contiguous(),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    finally:
        net.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, path)
    return path


def load_export(path: str | Path) -> torch.nn.Module:
    """The module of a program saved by :func:`export_compact`: ``module(x) -> {task: output}``."""
    return torch.export.load(Path(path)).module()
