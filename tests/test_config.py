"""config.toml -> frozen dataclasses; every error names file, key, value and what is allowed."""

import subprocess
import sys
from pathlib import Path

import pytest

from adlmon.config import Config, ConfigError, load_config, parse_config, to_toml

ROOT = Path(__file__).resolve().parents[1]


def errors_of(text: str, tmp_path: Path) -> list[str]:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    return exc.value.errors


def test_shipped_config_toml_states_every_default():
    assert load_config(ROOT / "config.toml") == Config()


def test_effective_config_round_trips_through_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(to_toml(Config()))
    assert load_config(p) == Config()


def test_bad_value_names_file_section_key_value_and_what_is_allowed(tmp_path):
    (err,) = errors_of("[engine]\ngap_ms = -5\n", tmp_path)
    assert err == f"{tmp_path / 'bad.toml'}: [engine] gap_ms = -5: must be a positive integer"


def test_unknown_keys_and_sections_are_errors_not_silently_ignored(tmp_path):
    errs = errors_of("[engine]\ngap_msec = 10\n[enigne]\nx = 1\n", tmp_path)
    assert any("[engine] unknown key 'gap_msec'" in e and "gap_ms" in e for e in errs)
    assert any("unknown key 'enigne'" in e for e in errs)


def test_every_error_is_reported_at_once(tmp_path):
    errs = errors_of('[server]\nlisten = "nohost"\n[bus]\nkind = "kafka"\n'
                     '[venues.hyperliquid]\nsources = ["vault_fills", "telepathy"]\n'
                     'ws_url = "http://x"\n', tmp_path)
    assert len(errs) == 4
    assert any("listen = 'nohost': must be HOST:PORT" in e for e in errs)
    assert any("kind = 'kafka'" in e for e in errs)
    assert any("sources = ['vault_fills', 'telepathy']: unknown 'telepathy' (item 2)" in e
               for e in errs)


def test_wrong_types_are_rejected_and_ints_widen_to_floats():
    with pytest.raises(ConfigError, match=r"gap_ms = '5000': must be an integer"):
        parse_config({"engine": {"gap_ms": "5000"}})
    with pytest.raises(ConfigError, match=r"horizons_ms = \[0, 'x'\]: must be an array of int"):
        parse_config({"engine": {"horizons_ms": [0, "x"]}})
    with pytest.raises(ConfigError, match="enabled = 1: must be true or false"):
        parse_config({"venues": {"hyperliquid": {"enabled": 1}}})
    cfg = parse_config({"counterfactual": {"ilp_time_limit_s": 3}})
    assert cfg.counterfactual.ilp_time_limit_s == 3.0 and isinstance(cfg.counterfactual.ilp_time_limit_s, float)


def test_cross_key_rules(tmp_path):
    errs = errors_of("[venues.hyperliquid]\nbackoff_initial_s = 90.0\n[server]\ntls_cert = \"c.pem\"\n",
                     tmp_path)
    assert any("backoff_initial_s = 90.0: must not exceed backoff_max_s = 60.0" in e for e in errs)
    assert any("tls_cert and tls_key must be set together" in e for e in errs)


def test_broken_toml_and_missing_file_are_clear(tmp_path):
    (err,) = errors_of("[engine\ngap_ms = 1\n", tmp_path)
    assert "not valid TOML" in err and "bad.toml" in err
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def adlmon(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "adlmon", *map(str, argv)],
                          capture_output=True, text=True, timeout=60)


def test_check_config_cli_prints_errors_and_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine]\ngap_ms = 0\n")
    r = adlmon("check-config", bad)
    assert r.returncode == 2 and "gap_ms = 0: must be a positive integer" in r.stderr
    ok = adlmon("check-config", ROOT / "config.toml")
    assert ok.returncode == 0 and "[venues.hyperliquid]" in ok.stdout


def test_a_bad_list_item_is_named_with_its_position(tmp_path):
    errs = errors_of('[counterfactual]\nmechanisms = ["pro_rata", "pro-rata", "rap"]\n'
                     '[venues.hyperliquid]\nsources = ["trades", "fills"]\n', tmp_path)
    assert any("mechanisms" in e and "'pro-rata' (item 2)" in e and "'pro_rata'" not in
               e.split("each item")[0].split("unknown")[1] for e in errs), errs
    assert any("sources" in e and "'fills' (item 2)" in e for e in errs), errs


def test_a_wavelog_path_that_cannot_be_a_file_names_the_key(tmp_path):
    errs = errors_of(f'[wavelog]\npath = "{tmp_path}"\n', tmp_path)
    assert errs and errs[0].endswith(f"[wavelog] path = '{tmp_path}': is a directory: must be "
                                     'a file path ("" disables the wavelog)')


async def test_a_wavelog_that_cannot_be_opened_stops_the_start_naming_the_key(tmp_path):
    import dataclasses

    from adlmon.app import Daemon
    (tmp_path / "file").write_text("x")
    cfg = parse_config({"wavelog": {"path": str(tmp_path / "file" / "w.jsonl")},
                        "venues": {"hyperliquid": {"enabled": False}}}, "test")
    cfg = dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, listen="127.0.0.1:0"))
    daemon = Daemon(cfg)
    with pytest.raises(ValueError, match=r"^\[wavelog\] path = '.*w\.jsonl': cannot open"):
        await daemon.start()


def test_check_config_without_an_argument_uses_config_toml_or_the_defaults(tmp_path):
    def check(cwd):
        return subprocess.run([sys.executable, "-m", "adlmon", "check-config"], cwd=cwd,
                              capture_output=True, text=True, timeout=60)
    r = check(tmp_path)  # no config.toml here: built-in defaults, as `adlmon run`
    assert r.returncode == 0 and "built-in defaults" in r.stderr, r.stderr
    assert load_config_text(r.stdout) == Config()
    (tmp_path / "config.toml").write_text("[engine]\ngap_ms = 7000\n")
    r = check(tmp_path)
    assert r.returncode == 0 and "from config.toml" in r.stderr
    assert load_config_text(r.stdout).engine.gap_ms == 7000


def load_config_text(text: str) -> Config:
    import tomllib
    return parse_config(tomllib.loads(text), "stdout")


def test_empty_horizons_are_refused_by_check_config_before_replay_or_run_use_them(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine]\nhorizons_ms = []\n")
    r = adlmon("check-config", bad)
    assert r.returncode == 2 and "horizons_ms = []: must be a non-empty list" in r.stderr
    data = tmp_path / "node_fills_by_block.jsonl"
    data.write_bytes((ROOT / "tests/fixtures/hyperliquid/adl_block_758800641.jsonl").read_bytes())
    r = adlmon("replay", data, "--config", bad)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "horizons_ms" in r.stderr
