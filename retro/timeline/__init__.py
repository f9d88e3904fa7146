"""Stages 1-2 of the pipeline: a bundle's files become one normalized, cited timeline.

- `harvest.py`: live APIs -> a bundle folder (`retro harvest`), through each connector.
- `bundle.py`: read a bundle: incident.yaml, then every file offered to the connectors.
- `normalize.py`: merge, dedupe, link, choose the window, give every event its id.
- `people.py`: join actors across sources into people; find incident roles.
- `read.py`: `read_timeline`, the stages wired together.
- `output.py`: the timeline as JSON rows, a Markdown table or CSV (`retro timeline`).
"""
