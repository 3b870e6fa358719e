"""config.toml -> frozen dataclasses, validated once at start.

Every error names the file, the key, the bad value and what is allowed, e.g.
``config.toml: [engine] gap_ms = -5: must be a positive integer``. Unknown keys
are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

HLP_VAULT = "0xdfc24b077bc1425ad1dea75bcb6f8158e10df303"
HLP_LIQUIDATORS = (
    "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14",  # HLP Liquidator
    "0xb0a55f13d22f66e6d495ac98113841b2326e9540",  # HLP Liquidator 2
)

MECHANISMS = (
    "pro_rata", "capped_pro_rata", "rap", "contract_pro_rata", "min_max_integer",
    "queue_pnl", "queue_hyperliquid", "risk_based",
)
HL_SOURCES = ("vault_fills", "vault_events", "vault_state", "marks", "trades", "node")


class ConfigError(ValueError):
    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors

    def report(self) -> int:
        """Print every error to stderr; the exit code of a command refused for its config."""
        for line in self.errors:
            print(line, file=sys.stderr)
        return 2


@dataclass(frozen=True)
class EngineConfig:
    gap_ms: int = 5000  # a new wave starts after this much silence between ADL fills
    horizons_ms: tuple[int, ...] = (0, 500, 1000, 2000, 5000)  # production haircut horizons Δ
    state_dir: str = ""  # where the daemon keeps offsets/state; "" = no persistence
    snapshot_interval_s: float = 30.0  # state snapshot period (and one on shutdown) in state_dir
    node_silence_s: float = 30.0  # node deployment: wall time moves the clock only after this node silence


@dataclass(frozen=True)
class CounterfactualConfig:
    mechanisms: tuple[str, ...] = MECHANISMS
    ilp_time_limit_s: float = 2.0  # HiGHS limit for the min-max integer program
    ilp_max_accounts: int = 2000  # larger waves use the rounding fallback (reported as such)
    severity: str = "ogd"  # ogd | fixed | backoff: the ex-ante controller
    fixed_theta: float = 0.1
    backoff_alpha: float = 0.5
    backoff_theta0: float = 0.05
    fairness_lambda: float = 1.0  # λ of the per-round loss (OL eq. 23)


@dataclass(frozen=True)
class ExposureConfig:
    watch: tuple[str, ...] = ()  # addresses with rank/percentile gauges (at most 20)
    reference_shortfall_usd: float = 1_000_000.0  # the shortfall of the top-10-share gauge
    interval_s: float = 10.0  # how often the daemon recomputes the queue gauges


@dataclass(frozen=True)
class ServerConfig:
    listen: str = "127.0.0.1:9817"
    basic_auth_user: str = ""
    basic_auth_password: str = ""  # prefer basic_auth_password_file or ADLMON_BASIC_AUTH_PASSWORD
    basic_auth_password_file: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    recent_waves: int = 200  # kept in memory for /api/waves
    header_timeout_s: float = 10.0  # a connection must send its request within this (slow clients)
    max_connections: int = 256  # open HTTP connections; past it the idle ones are closed first


@dataclass(frozen=True)
class WavelogConfig:
    path: str = "wavelog.jsonl"  # one JSON wave per line; "" disables


@dataclass(frozen=True)
class BusConfig:
    kind: str = "memory"  # memory | nats
    nats_url: str = "nats://127.0.0.1:4222"
    stream: str = "ADLMON"
    queue_size: int = 100000


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    format: str = "text"  # text | json


@dataclass(frozen=True)
class HyperliquidConfig:
    enabled: bool = True
    ws_url: str = "wss://api.hyperliquid.xyz/ws"
    info_url: str = "https://api.hyperliquid.xyz/info"
    sources: tuple[str, ...] = ("vault_fills", "vault_events", "vault_state", "marks", "trades")
    marks_feed: str = "activeAssetCtx"  # source "marks": activeAssetCtx per coin | allMids (one subscription)
    coins: tuple[str, ...] = ()  # () = every perp listed by metaAndAssetCtxs (≤ 1000 subscriptions)
    vaults: tuple[str, ...] = ()  # () = discover children of hlp_vault named "Liquidator"
    hlp_vault: str = HLP_VAULT
    node_data_dir: str = ""  # hl-node data dir (…/hl/data) for the node tailer
    ping_interval_s: float = 30.0  # application ping; the server closes idle sockets at 60 s
    liveness_timeout_s: float = 15.0  # no pong / no frame for this long = dead transport
    silence_budget_s: float = 120.0  # busy channels (trades, marks) reconnect after this silence
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    rest_weight_per_min: int = 1200
    vault_poll_interval_s: float = 5.0
    quarantine_path: str = "quarantine.jsonl"
    quarantine_max_bytes: int = 10_000_000
    max_frame_bytes: int = 64 << 20  # websocket frame cap (largest real: ~5 MB userFills)


@dataclass(frozen=True)
class VenuesConfig:
    hyperliquid: HyperliquidConfig = field(default_factory=HyperliquidConfig)


@dataclass(frozen=True)
class Config:
    engine: EngineConfig = field(default_factory=EngineConfig)
    counterfactual: CounterfactualConfig = field(default_factory=CounterfactualConfig)
    exposure: ExposureConfig = field(default_factory=ExposureConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    wavelog: WavelogConfig = field(default_factory=WavelogConfig)
    bus: BusConfig = field(default_factory=BusConfig)
    log: LogConfig = field(default_factory=LogConfig)
    venues: VenuesConfig = field(default_factory=VenuesConfig)


# Value rules beyond the type: (section path, key) -> (predicate, what is allowed)
def _positive(v):
    return v > 0


def _non_negative(v):
    return v >= 0


def _unit(v):
    return 0 <= v <= 1


def _listen(v):
    host, sep, port = v.rpartition(":")
    return bool(sep and host) and port.isdigit() and 0 < int(port) < 65536


def _subset_rule(allowed: tuple[str, ...]):
    """A list rule whose message names the offending items, not the whole list."""
    def message(v) -> str:
        bad = [f"{x!r} (item {i})" for i, x in enumerate(v, 1) if x not in allowed]
        return f"unknown {', '.join(bad)}: each item must be one of {list(allowed)}"
    return (lambda v: set(v) <= set(allowed), message)


def _wavelog_path(v: str) -> bool:
    try:
        return not (v and Path(v).is_dir())
    except OSError:  # e.g. a name too long for the file system: not a usable path either
        return False


_RULES: dict[tuple[str, str], tuple[Any, Any]] = {
    ("wavelog", "path"): (_wavelog_path, "is a directory: must be a file path (\"\" disables "
                                         "the wavelog)"),
    ("engine", "gap_ms"): (_positive, "must be a positive integer"),
    ("engine", "snapshot_interval_s"): (_positive, "must be a positive number of seconds"),
    ("engine", "node_silence_s"): (_positive, "must be a positive number of seconds"),
    ("engine", "horizons_ms"): (lambda v: bool(v) and all(h >= 0 for h in v) and len(set(v)) == len(v),
                                "must be a non-empty list of distinct non-negative integers (ms)"),
    ("counterfactual", "mechanisms"): _subset_rule(MECHANISMS),
    ("counterfactual", "ilp_time_limit_s"): (_positive, "must be a positive number of seconds"),
    ("counterfactual", "ilp_max_accounts"): (_positive, "must be a positive integer"),
    ("counterfactual", "severity"): (lambda v: v in ("ogd", "fixed", "backoff"),
                                     "must be one of 'ogd', 'fixed', 'backoff'"),
    ("counterfactual", "fixed_theta"): (_unit, "must be in [0, 1]"),
    ("counterfactual", "backoff_alpha"): (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    ("counterfactual", "backoff_theta0"): (_unit, "must be in [0, 1]"),
    ("counterfactual", "fairness_lambda"): (_non_negative, "must be >= 0"),
    ("exposure", "watch"): (lambda v: len(v) <= 20 and all(
        len(a) == 42 and a[:2] == "0x" and all(c in "0123456789abcdefABCDEF" for c in a[2:])
        for a in v), "must be at most 20 addresses 0x + 40 hex digits"),
    ("exposure", "reference_shortfall_usd"): (_positive, "must be a positive number of USD"),
    ("exposure", "interval_s"): (_positive, "must be a positive number of seconds"),
    ("server", "listen"): (_listen, "must be HOST:PORT with a port in 1..65535"),
    ("server", "recent_waves"): (_positive, "must be a positive integer"),
    ("server", "header_timeout_s"): (_positive, "must be a positive number of seconds"),
    ("server", "max_connections"): (_positive, "must be a positive integer"),
    ("bus", "kind"): (lambda v: v in ("memory", "nats"), "must be 'memory' or 'nats'"),
    ("bus", "queue_size"): (_positive, "must be a positive integer"),
    ("log", "level"): (lambda v: v.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"),
                       "must be one of DEBUG, INFO, WARNING, ERROR"),
    ("log", "format"): (lambda v: v in ("text", "json"), "must be 'text' or 'json'"),
    ("venues.hyperliquid", "sources"): _subset_rule(HL_SOURCES),
    ("venues.hyperliquid", "marks_feed"): (lambda v: v in ("activeAssetCtx", "allMids"),
                                           "must be 'activeAssetCtx' or 'allMids'"),
    ("venues.hyperliquid", "ws_url"): (lambda v: v.startswith(("ws://", "wss://")),
                                       "must start with ws:// or wss://"),
    ("venues.hyperliquid", "info_url"): (lambda v: v.startswith(("http://", "https://")),
                                         "must start with http:// or https://"),
    ("venues.hyperliquid", "ping_interval_s"): (_positive, "must be a positive number of seconds"),
    ("venues.hyperliquid", "liveness_timeout_s"): (_positive, "must be a positive number of seconds"),
    ("venues.hyperliquid", "silence_budget_s"): (_positive, "must be a positive number of seconds"),
    ("venues.hyperliquid", "backoff_initial_s"): (_positive, "must be a positive number of seconds"),
    ("venues.hyperliquid", "backoff_max_s"): (_positive, "must be a positive number of seconds"),
    ("venues.hyperliquid", "rest_weight_per_min"): (_positive, "must be a positive integer"),
    ("venues.hyperliquid", "vault_poll_interval_s"): (_positive, "must be a positive number of seconds"),
    ("venues.hyperliquid", "quarantine_max_bytes"): (_non_negative, "must be >= 0"),
    ("venues.hyperliquid", "max_frame_bytes"): (_positive, "must be a positive number of bytes"),
}


def _type_ok(value: Any, hint: Any) -> tuple[bool, Any, str]:
    """Check and coerce one TOML value against a dataclass field type."""
    if hint is bool:
        return isinstance(value, bool), value, "must be true or false"
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value, "must be an integer"
    if hint is float:  # TOML allows nan and inf: the boundary refuses them (adlmon/validate.py)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        try:
            x = float(value) if ok else 0.0
        except OverflowError:
            ok, x = False, 0.0
        ok = ok and math.isfinite(x)
        return ok, x if ok else value, "must be a finite number"
    if hint is str:
        return isinstance(value, str), value, "must be a string"
    if getattr(hint, "__origin__", None) is tuple:
        inner = hint.__args__[0]
        if not isinstance(value, list):
            return False, value, f"must be an array of {inner.__name__}"
        items = []
        for item in value:
            ok, coerced, _ = _type_ok(item, inner)
            if not ok:
                return False, value, f"must be an array of {inner.__name__}"
            items.append(coerced)
        return True, tuple(items), ""
    return False, value, f"unsupported type {hint}"


def _build(cls: type, data: dict, path: str, source: str, errors: list[str]):
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    where = f"[{path}] " if path else ""
    for key, value in data.items():
        if key not in names:
            errors.append(f"{source}: {where}unknown key {key!r}: allowed keys are "
                          f"{sorted(names)}")
            continue
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                errors.append(f"{source}: {where}{key} must be a table [{_join(path, key)}]")
                continue
            kwargs[key] = _build(hint, value, _join(path, key), source, errors)
            continue
        ok, coerced, allowed = _type_ok(value, hint)
        if not ok:
            errors.append(f"{source}: {where}{key} = {value!r}: {allowed}")
            continue
        rule = _RULES.get((path, key))
        if rule and not rule[0](coerced):
            why = rule[1](coerced) if callable(rule[1]) else rule[1]
            errors.append(f"{source}: {where}{key} = {value!r}: {why}")
            continue
        kwargs[key] = coerced
    return cls(**kwargs)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def parse_config(data: dict, source: str = "<config>") -> Config:
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the configuration must be a table of sections, not {type(data).__name__}"])
    errors: list[str] = []
    cfg = _build(Config, data, "", source, errors)
    hl = cfg.venues.hyperliquid
    if hl.backoff_initial_s > hl.backoff_max_s:
        errors.append(f"{source}: [venues.hyperliquid] backoff_initial_s = {hl.backoff_initial_s}: "
                      f"must not exceed backoff_max_s = {hl.backoff_max_s}")
    if bool(cfg.server.tls_cert) != bool(cfg.server.tls_key):
        errors.append(f"{source}: [server] tls_cert and tls_key must be set together")
    if errors:
        raise ConfigError(errors)
    return cfg


DEFAULT_PATH = "config.toml"


def default_config_path(path: str | None) -> str | None:
    """The file a command reads: ``path`` when given, else ``config.toml`` when present
    in the working directory, else None (built-in defaults). ``run`` and
    ``check-config`` share this rule."""
    if path is not None:
        return path
    return DEFAULT_PATH if Path(DEFAULT_PATH).is_file() else None


def load_config(path: str | Path | None) -> Config:
    """Load and validate a TOML file; ``None`` gives the defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror or exc}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{p}: not valid TOML: {exc}"]) from None
    return parse_config(data, str(p))


def to_dict(cfg: Any) -> dict:
    """The effective config as plain data (tuples as lists), secrets masked."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out[f.name] = to_dict(v)
        elif isinstance(v, tuple):
            out[f.name] = list(v)
        elif f.name == "basic_auth_password" and v:
            out[f.name] = "***"
        else:
            out[f.name] = v
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def to_toml(cfg: Config) -> str:
    lines: list[str] = []

    def emit(table: dict, path: str) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if scalars:
            lines.append(f"[{path}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in scalars.items())
            lines.append("")
        for k, v in table.items():
            if isinstance(v, dict):
                emit(v, _join(path, k))

    emit(to_dict(cfg), "")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=None,
                        help=f"config file (default: {DEFAULT_PATH} when present, else the "
                             "built-in defaults, as `adlmon run` does)")


def main(args: argparse.Namespace) -> int:
    path = default_config_path(args.path)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        return exc.report()
    print(f"# effective config from {path or 'the built-in defaults (no config.toml here)'}",
          file=sys.stderr)
    sys.stdout.write(to_toml(cfg))
    return 0
