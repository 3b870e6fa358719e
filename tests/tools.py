"""The one way a test asks for a system tool it drives for real (promtool, amtool,
nats-server, chromium, systemd-analyze, docker-compose, openssl).

Missing on a developer's machine: the test skips, naming the Debian package
(``make system-deps`` installs it). Missing under ``CI=true``: the test FAILS with
the same message, because there the tool's absence means the apt step of
``.ci/system-deps.sh`` failed and every regression the test guards would hide
behind a skip (issue 8 §3)."""

from __future__ import annotations

import os
import shutil

import pytest

# Debian puts some daemons in /usr/sbin, which is not on every user's PATH.
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def on_ci(env: dict | None = None) -> bool:
    value = (os.environ if env is None else env).get("CI", "")
    return value.strip().lower() in ("1", "true", "yes")


def find_tool(*names: str) -> str | None:
    """The first of ``names`` on PATH or in an sbin directory, else None."""
    for name in names:
        path = shutil.which(name)
        if path is None:
            path = next((os.path.join(d, name) for d in _SBIN
                         if os.access(os.path.join(d, name), os.X_OK)), None)
        if path is not None:
            return path
    return None


def missing(reason: str, *, env: dict | None = None) -> None:
    """Skip with ``reason``, or fail with it under CI=true."""
    if on_ci(env):
        pytest.fail(f"{reason} [CI=true: a missing tool fails the run instead of skipping]",
                    pytrace=False)
    pytest.skip(reason)


def require_tool(*names: str, package: str, env: dict | None = None) -> str:
    """The path of the first of ``names`` found; else skip (fail under CI=true) naming
    the Debian ``package``."""
    path = find_tool(*names)
    if path is None:
        missing(f"{names[0]} is not installed (Debian package {package}; `make system-deps`)",
                env=env)
    return path
