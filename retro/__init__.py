"""retro: AI-assisted, blameless incident postmortems with cited timelines."""

__version__ = "0.1.0"
