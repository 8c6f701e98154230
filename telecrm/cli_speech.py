"""Commands of the speech feature, registered by telecrm.cli.build_parser."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register this feature's commands on the top-level subparsers."""
