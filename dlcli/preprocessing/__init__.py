"""Layer 3: fitted preprocessing, its transformers and JSON state, text, the statistics pass."""
