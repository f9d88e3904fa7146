"""Local HTTP emulators of the vendor APIs retro talks to. They bind 127.0.0.1 only."""
