"""`python -m retro.cli`: the same as the `retro` command."""

from retro.cli.main import main

main()
