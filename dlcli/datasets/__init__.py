"""Layer 4: what a split feeds to fit, score and predict; what predict writes."""
