"""What each CLI module registers its subcommands on: the object ``add_subparsers`` returns.

argparse names its type only privately, so the CLI states the one method it uses.
"""

from __future__ import annotations

import argparse
from typing import Any, Protocol


class Commands(Protocol):
    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...
