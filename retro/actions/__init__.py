"""Action items after the draft: the Markdown table, filing into Jira and status back.

- `table.py`: the action-items table of a draft: read rows, check the table is well-formed
  (`table_problems`), change single cells; each row's marker (its identity).
- `describe.py`: one action item as a Jira issue's summary and description.
- `site.py`: the Jira site, reached through the `jira` connector's client (never by importing
  the connectors package), and one-line errors with filing hints.
- `prepare.py`: checks before filing (project, issue type, paged create metadata, priorities,
  components) and each issue's redacted fields.
- `jira.py`: `retro file-actions`, idempotent filing; `links.py`: links to the incident ticket.
- `sync.py`: `retro sync-actions`, status back from Jira.
- `lock.py`: one run per draft at a time.
"""
