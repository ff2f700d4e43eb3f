"""Layer 6: evaluate and predict a finished run."""
