"""The retro command line."""

from retro.cli.main import main

__all__ = ["main"]
