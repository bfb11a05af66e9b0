"""Joining a Ray cluster the way Ray's docs set one up (``ray start --head``, token authentication on).

Ray 2.60 heads started with a token on their machine require it from every client, but a driver joining
with an explicit address turns token mode on only when ``RAY_AUTH_MODE=token`` is set. ``prepare_join``
sets it whenever the token is on this machine (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
``~/.ray/auth_token``, where Ray looks), so ``python run.py --address HOST:PORT`` needs no extra
environment; and it checks that the head answers at all (a TCP connect, 3 s) instead of letting
``ray.init`` retry for 20 s. ``join_error`` turns what ``ray.init`` raised into one line saying what to
set. This module imports no Ray at import time: ``prepare_join`` must run before Ray reads its config.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from supernet.config import ConfigError

AUTH_MODE, TOKEN, TOKEN_PATH = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN = Path("~/.ray/auth_token")
CONNECT_TIMEOUT_S = 3.0
GCS_RETRIES = "3"  # Ray's default of 20 one-second tries at the head's key-value store


class ClusterError(ConfigError):
    """The cluster cannot be reached or refuses us; the message says what to set (exit code 2)."""


def token_source() -> str | None:
    """Where the cluster token is on this machine (the variable or file Ray reads), or None."""
    if os.environ.get(TOKEN):
        return TOKEN
    path = os.environ.get(TOKEN_PATH)
    if path:
        return f"{TOKEN_PATH}={path}" if Path(path).expanduser().is_file() else None
    return str(DEFAULT_TOKEN) if DEFAULT_TOKEN.expanduser().is_file() else None


def is_client_url(address: str) -> bool:
    """Whether a Ray address is a URL (``ray://HOST:PORT``, Ray Client) rather than a GCS ``HOST:PORT``:
    Ray Client speaks its own protocol, so there is no head port to check here. Not the storage test
    (``analysis.schema.is_uri``): that one is about where results live."""
    return "://" in address


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a GCS address ``HOST:PORT``; None for ``auto``, ``local`` and ``ray://`` client URLs."""
    if address in ("auto", "local") or is_client_url(address):
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterError(
            f"--address / RAY_ADDRESS {address!r}: expected HOST:PORT of the head (e.g. 10.0.0.1:6379) or auto"
        )
    return host.strip("[]"), int(port)


def prepare_join(address: str) -> None:
    """Before ``ray.init(address=...)``: token mode when a token is here, fewer GCS retries, a reachable head."""
    if os.environ.get(AUTH_MODE) is None and token_source() is not None:
        os.environ[AUTH_MODE] = "token"
        if "ray" in sys.modules:  # Ray caches its config at import: refresh it, as `ray start` does itself
            from ray._raylet import Config

            Config.initialize("")
    os.environ.setdefault("RAY_NUM_REDIS_GET_RETRIES", GCS_RETRIES)
    hp = _host_port(address)
    if hp is None:
        return
    try:
        socket.create_connection(hp, timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise ClusterError(
            f"cannot reach a Ray head at {address} ({e.strerror or e}): start it there with "
            f"`ray start --head --port {hp[1]}`, or set --address / RAY_ADDRESS to the HOST:PORT it printed"
        ) from None


def join_error(address: str, exc: BaseException) -> ClusterError:
    """One line for a failed ``ray.init(address=...)``: what to set to fix it."""
    text = f"{exc} {exc.__cause__ or ''}"
    if "Authentication" in text or "InvalidAuthToken" in text or "Unauthenticated" in text:
        where = token_source()
        have = f"the token found in {where} was refused" if where else "no token was found on this machine"
        return ClusterError(
            f"the Ray cluster at {address} requires its authentication token and {have}: copy the head's "
            f"~/.ray/auth_token (`ray get-auth-token` on the head prints it) to {DEFAULT_TOKEN} here, or set "
            f"{TOKEN} (the token) or {TOKEN_PATH} (a file holding it)"
        )
    return ClusterError(
        f"could not join the Ray cluster at {address} ({type(exc).__name__}: {exc}): check that "
        f"`ray status --address {address}` works from this machine, then set --address / RAY_ADDRESS"
    )
