"""The fields every CEX venue section shares (``[venues.bybit|okx|binance]``; issue 11).

Each venue's ``config.py`` subclasses :class:`CexConfig` with its URLs, symbols
and limits. Keys for the optional private stream (your own ADL) come from a
file or an environment variable, never from the config file itself, and are
never logged or exported (:mod:`adlmon.venues.keys`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class CexConfig:
    enabled: bool = False
    ping_interval_s: float = 20.0
    liveness_timeout_s: float = 10.0
    marks_silence_budget_s: float = 30.0  # marks are busy: reconnect after this much silence
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    rest_weight_per_min: float = 600.0
    insurance_poll_interval_s: float = 60.0
    first_timeout_s: float = 10.0  # REST reads awaited before the sockets start
    # adlmon's own estimate (adlmon.engine.adlstate): a pool warns at this projected
    # drawdown from its 8 h max, or when its shortfall estimate exceeds this.
    drawdown_warn_ratio: float = 0.2
    shortfall_warn_usd: float = 0.0
    # Your own ADL (optional, read-only keys): a JSON file {"key", "secret"[, "passphrase"]}
    # or the environment variables named here; empty = off.
    api_key_file: str = ""
    api_key_env: str = ""
    api_secret_env: str = ""
    api_passphrase_env: str = ""
    quarantine_path: str = "quarantine.jsonl"
    quarantine_max_bytes: int = 10_000_000
    gap_ms: int = 5000

    section = "venues.cex"  # overridden per venue (a class attribute, not a key)

    def problems(self, source: str = "config.toml") -> list[str]:
        """Every value rule the types do not express, as ``file: [section] key = v: rule``."""
        where = f"{source}: [{self.section}]"
        out = []
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("_url") and not str(v).startswith(("ws://", "wss://", "http://", "https://")):
                out.append(f"{where} {f.name} = {v!r}: must be a ws(s):// or http(s):// URL")
            elif f.name.endswith(("_s", "_ms", "_per_min")) and not v > 0:
                out.append(f"{where} {f.name} = {v!r}: must be positive")
        if not 0 < self.drawdown_warn_ratio <= 1:
            out.append(f"{where} drawdown_warn_ratio = {self.drawdown_warn_ratio!r}: must be in (0, 1]")
        if self.shortfall_warn_usd < 0:
            out.append(f"{where} shortfall_warn_usd = {self.shortfall_warn_usd!r}: must be >= 0")
        if self.backoff_initial_s > self.backoff_max_s:
            out.append(f"{where} backoff_initial_s = {self.backoff_initial_s}: must not exceed "
                       f"backoff_max_s = {self.backoff_max_s}")
        for f in fields(self):
            if f.name.endswith("symbols") and len(set(getattr(self, f.name))) != len(getattr(self, f.name)):
                out.append(f"{where} {f.name}: symbols must be distinct")
        return out
