"""Action items after the draft: the Markdown table, filing into Jira and status back.

- `table.py`: the action-items table of a draft: read rows, change cells, match titles.
- `jira.py`: `retro file-actions` (idempotent filing) and `retro sync-actions`.
"""
