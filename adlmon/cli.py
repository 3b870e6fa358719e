"""``adlmon`` command line: one subcommand per module.

Each module named here provides ``add_arguments(parser)`` and ``main(args) -> int``
and is imported only when its subcommand runs (``adlmon version`` stays instant).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from adlmon import __version__

COMMANDS = {
    "run": ("adlmon.app", "run the daemon: live collectors -> engine -> metrics, API, wavelog"),
    "replay": ("adlmon.replay", "replay Hyperliquid node files and report every ADL wave"),
    "fetch": ("adlmon.venues.hyperliquid.archive",
              "download Hyperliquid's S3 node archive (requester pays) into a local cache"),
    "simulate": ("adlmon.sim", "write a synthetic ADL cascade in Hyperliquid's archive formats"),
    "exposure": ("adlmon.exposure_cli", "the ADL queue of a coin and side at a time, and what a shortfall would take"),
    "scorecard": ("adlmon.scorecard", "policy table (OL Table 2) over a wavelog or per-wave CSV"),
    "check-config": ("adlmon.config", "validate a config file and print the effective config"),
}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` states each option's default (issue 8 §3), except where there is
    none to state (None, a flag) or the help text already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (one broken or slow
    subcommand never breaks the others)."""
    parser = argparse.ArgumentParser(prog="adlmon", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("version", help="print the version")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=_Formatter)
        if name == command:
            importlib.import_module(module).add_arguments(p)
            p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["version"] or argv[:1] == ["--version"]:
        print(f"adlmon {__version__}")
        return 0
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    return int(importlib.import_module(args._module).main(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
