"""Layer 1: the config (pydantic models, key paths, checks against Keras' names, search, starters)."""
