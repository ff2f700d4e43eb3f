"""Layer 2: bounded tallies and the metrics of a split."""
