"""tests/tools.py: a missing tool skips a test locally and fails it under CI=true."""

from __future__ import annotations

import pytest

from tools import find_tool, on_ci, require_tool

ABSENT = "adlmon-no-such-tool-9f3c"


def test_missing_tool_skips_outside_ci_naming_the_package():
    with pytest.raises(pytest.skip.Exception, match="Debian package some-pkg"):
        require_tool(ABSENT, package="some-pkg", env={})


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_missing_tool_fails_under_ci_naming_the_package(value):
    with pytest.raises(pytest.fail.Exception, match="Debian package some-pkg"):
        require_tool(ABSENT, package="some-pkg", env={"CI": value})


def test_present_tool_is_found_and_ci_values_are_read():
    assert find_tool(ABSENT, "sh").endswith("/sh")  # falls through to the next name
    assert require_tool("sh", package="dash", env={"CI": "true"}).endswith("/sh")
    assert not on_ci({"CI": "false"}) and not on_ci({})
