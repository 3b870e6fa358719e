"""The three CEX faces in the registry, their config rules and coverage (issue 11)."""

import dataclasses

import pytest

from adlmon.engine.adlstate import AdlStateTracker
from adlmon.io.capture import CaptureRecord
from adlmon.venues import faces

CEX = ("binance", "bybit", "okx")


@pytest.mark.parametrize("name", CEX)
def test_face_declares_config_sources_parser_fake_rule_and_coverage(name):
    f = faces()[name]
    cfg = f.config()
    assert cfg.enabled is False and cfg.problems() == []
    assert f.capture_parser(cfg).parse(CaptureRecord(1, name, "", "open", "")) == []
    rule = f.extra["adl_rule"](dataclasses.replace(cfg, drawdown_warn_ratio=0.5, shortfall_warn_usd=7.0))
    assert (rule.drawdown_warn_ratio, rule.shortfall_warn_usd) == (0.5, 7.0)
    AdlStateTracker({name: rule})
    assert "Not public" in f.coverage and f.fake is not None and f.demo_config is not None


def test_binance_coverage_says_liquidations_are_lower_bounds():
    assert "LOWER BOUND" in faces()["binance"].coverage


@pytest.mark.parametrize("name,key,value,rule", [
    ("bybit", "linear_url", "http-nope", "ws(s)://"),
    ("okx", "ping_interval_s", 0.0, "positive"),
    ("binance", "drawdown_warn_ratio", 1.5, "(0, 1]"),
    ("bybit", "symbols", ("A", "A"), "distinct"),
    ("okx", "backoff_initial_s", 100.0, "must not exceed"),
])
def test_config_problems_name_the_section_key_and_rule(name, key, value, rule):
    cfg = dataclasses.replace(faces()[name].config(), **{key: value})
    (msg,) = cfg.problems("c.toml")
    assert msg.startswith(f"c.toml: [venues.{name}] {key}") and rule in msg
