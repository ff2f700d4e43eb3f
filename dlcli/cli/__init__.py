"""Layer 10: the Typer commands and what they print."""
