"""A Ray head started with the `ray` CLI in a session of its own, for the cluster tests.

The head gets a private HOME (holding ~/.ray/auth_token, so token authentication is on as `ray start --head`
sets it by default), private ports and a short temp dir; at the end exactly the processes of its session are
killed (never `ray stop`, which would end every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAY = shutil.which("ray") or str(Path(sys.executable).parent / "ray")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def plain_env(home: Path) -> dict:
    """The environment of a plain shell of this user: no RAY_AUTH_MODE, no RAY_ADDRESS, no token variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    return {**env, "HOME": str(home), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def token_home(tmp_path: Path) -> Path:
    """A private HOME whose ~/.ray/auth_token holds a fresh token."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    return home


def kill_session(sid: int) -> None:
    """SIGKILL every process of the session ``sid`` (the head's: gcs, raylet, agents, workers)."""
    for _ in range(3):
        pids = []
        for p in Path("/proc").iterdir():
            if p.name.isdigit() and int(p.name) != os.getpid():
                try:
                    if os.getsid(int(p.name)) == sid:
                        pids.append(int(p.name))
                except (ProcessLookupError, PermissionError):
                    pass
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


@contextlib.contextmanager
def ray_head(env: dict, num_cpus: int, temp_dir: str | None = None) -> Iterator[str]:
    """Run `ray start --head` on free ports under ``env``; yield its GCS address; kill its session at the end."""
    gcs, nm, om, agent, agent_grpc, metrics, renv, dash = free_ports(8)
    cmd = [RAY, "start", "--head", f"--port={gcs}", "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}"]
    cmd += [f"--temp-dir={temp_dir}"] if temp_dir else []
    cmd += [
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--node-manager-port={nm}",
        f"--object-manager-port={om}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}",
        f"--runtime-env-agent-port={renv}",
        f"--dashboard-port={dash}",
    ]
    head = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = head.communicate(timeout=120)
        assert head.returncode == 0, out[-3000:]
        yield f"127.0.0.1:{gcs}"
    finally:
        kill_session(head.pid)


def short_temp(prefix: str) -> str:
    """A temp dir under /tmp: Ray's unix socket paths must stay < 108 chars."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")
