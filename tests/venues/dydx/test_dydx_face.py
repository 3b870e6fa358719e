"""The dYdX face in the registry and its config section's rules."""

from dataclasses import replace

from adlmon.venues import face, faces
from adlmon.venues.dydx.config import DydxConfig, check


def test_registry_finds_the_dydx_face():
    f = face("dydx")
    assert "dydx" in faces() and f.config is DydxConfig and f.gap_ms == 5000
    assert "DELEVERAGED" in f.coverage and "upper bound" in f.coverage
    assert DydxConfig().enabled is False  # off by default
    parser = f.capture_parser(DydxConfig())
    assert hasattr(parser, "parse") and parser.finish() == []


def test_defaults_pass_and_bad_values_name_key_value_and_rule():
    assert check(DydxConfig()) == []
    bad = replace(DydxConfig(), ws_url="http://x", trades_per_connection=40, lcd_url="node:1317",
                  subaccounts=("0xabc/0",), backoff_initial_s=9.0, backoff_max_s=1.0)
    errors = check(bad, "c.toml")
    assert "c.toml: [venues.dydx] ws_url = 'http://x': must start with ws:// or wss://" in errors
    assert any(e.startswith("c.toml: [venues.dydx] trades_per_connection = 40: must be in 1..32")
               for e in errors)
    assert any("lcd_url" in e for e in errors) and any("subaccounts" in e for e in errors)
    assert any("backoff_initial_s = 9.0: must not exceed backoff_max_s" in e for e in errors)
