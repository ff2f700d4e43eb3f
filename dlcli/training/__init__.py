"""Layer 6: one run in stages, fit, its callbacks and the per-epoch commit, fine-tuning."""
