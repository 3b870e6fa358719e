"""Read-only API keys for a venue's private stream (issue 11 "Your own ADL").

Keys come from a JSON file (``{"key": …, "secret": …[, "passphrase": …]}``, mode
0600 recommended) or from environment variables named in the venue section;
the config file never holds them. :class:`ApiKeys` never shows its values:
``repr``/``str`` mask them, and nothing in adlmon logs, captures (only received
frames are captured, never what is sent) or status dicts carries them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


class KeySourceError(ValueError):
    """A key source that is configured but unusable (message names it, never the key)."""


@dataclass(frozen=True)
class ApiKeys:
    key: str = field(repr=False)
    secret: str = field(repr=False)
    passphrase: str = field(default="", repr=False)
    source: str = ""  # where they came from ("file /etc/…", "env ADLMON_…"): safe to show

    def __repr__(self) -> str:
        return f"ApiKeys(source={self.source!r}, key=***)"

    __str__ = __repr__


def load_keys(cfg, environ=None) -> ApiKeys | None:
    """The section's keys, or None when none is configured (the private parts stay off)."""
    env = os.environ if environ is None else environ
    if getattr(cfg, "api_key_file", ""):
        path = Path(cfg.api_key_file)
        try:
            obj = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise KeySourceError(f"[{cfg.section}] api_key_file = {str(path)!r}: cannot be read as JSON "
                            f"({exc.__class__.__name__})") from None
        if not isinstance(obj, dict) or not obj.get("key") or not obj.get("secret"):
            raise KeySourceError(f"[{cfg.section}] api_key_file = {str(path)!r}: needs \"key\" and \"secret\"")
        return ApiKeys(str(obj["key"]), str(obj["secret"]), str(obj.get("passphrase", "")), f"file {path}")
    key = env.get(cfg.api_key_env or "", "") if cfg.api_key_env else ""
    secret = env.get(cfg.api_secret_env or "", "") if cfg.api_secret_env else ""
    if not key or not secret:
        return None
    passphrase = env.get(cfg.api_passphrase_env, "") if cfg.api_passphrase_env else ""
    return ApiKeys(key, secret, passphrase, f"env {cfg.api_key_env}")
