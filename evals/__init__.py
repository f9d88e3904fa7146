"""Golden incidents, the scorer and the report: `python -m evals` or `retro eval`."""
