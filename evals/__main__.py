"""`python -m evals`: the same command as `retro eval`."""

from __future__ import annotations

from retro.cli.evals import eval_command

if __name__ == "__main__":
    eval_command(prog_name="python -m evals")
