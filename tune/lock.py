"""One driver per experiment folder: ``<exp>/driver.lock``, created exclusively, holding the driver's host and pid.

``experiment_lock(exp_dir)`` claims the folder with ``O_CREAT | O_EXCL`` (atomic on local disks and NFS v3+:
of two drivers started at once exactly one gets it) and removes the file when the driver ends, however it
ends short of SIGKILL. A lock left by a killed driver on this host (its pid is gone, or now belongs to a
process started later) is broken with a line saying so; one held by a live driver, or by another host (whose
processes cannot be checked from here), is a ``LockError`` (exit code 2) naming the holder and the file to
delete once that driver is known to be gone. URI storage (``s3://``, ...) has no exclusive create: no lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from analysis.schema import LOCK_FILE, process_started
from supernet.config import ConfigError


class LockError(ConfigError):
    """Another driver holds the experiment folder (exit code 2)."""


def _holder() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": process_started(os.getpid()),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _stale(info: dict) -> bool:
    """Whether the lock's driver is certainly gone: same host, and its pid is dead or a newer process."""
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    now = process_started(info["pid"])
    return now is None or (info.get("started") not in (None, "?") and now not in ("?", info["started"]))


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # being written, or torn: treated as held


def acquire(exp_dir: str | Path) -> Path:
    """Claim ``exp_dir`` (created if needed) for this driver; returns the lock file. Raises LockError."""
    path = Path(exp_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except PermissionError as e:
            raise LockError(f"cannot write the lock {path} ({e.strerror}): give a --storage you can write") from None
        except FileExistsError:
            info = _read(path)
            if info is None:
                continue  # released meanwhile: try again
            if info and _stale(info):
                # rename first: of two drivers breaking the same stale lock only one rename succeeds
                try:
                    os.replace(path, path.with_name(f"{LOCK_FILE}.stale-{os.getpid()}"))
                except FileNotFoundError:
                    continue
                path.with_name(f"{LOCK_FILE}.stale-{os.getpid()}").unlink(missing_ok=True)
                print(
                    f"note: {path} was left by driver {info['host']}:{info['pid']}, which is gone; taking over",
                    flush=True,
                )
                continue
            who = (
                f"{info.get('host', '?')}:{info.get('pid', '?')} since {info.get('since', '?')}"
                if info
                else "another driver"
            )
            raise LockError(
                f"experiment {exp_dir} is in use by the driver {who} (lock {path}); wait for it to end, or, "
                "if that driver is gone, delete the lock file and run again"
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump(_holder(), f)
        return path
    raise LockError(f"could not claim experiment {exp_dir} (lock {path} keeps changing): is another driver starting?")


def release(path: Path) -> None:
    """Remove the lock if it is still ours."""
    info = _read(path)
    if info and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def experiment_lock(exp_dir: str | Path | None) -> Iterator[None]:
    """Hold the experiment folder's lock for the ``with`` block (None: URI storage, no lock)."""
    if exp_dir is None:
        yield
        return
    path = acquire(exp_dir)
    try:
        yield
    finally:
        release(path)
