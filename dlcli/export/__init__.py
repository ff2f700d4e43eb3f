"""Layer 7: the raw-input graph, checked in its runtime, and its converters."""
