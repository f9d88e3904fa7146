"""Built-in source connectors for retro. Each module holds one source."""
