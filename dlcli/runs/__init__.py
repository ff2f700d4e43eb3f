"""Layer 2: the run directory, run.json, listing, plots and MLflow."""
