"""Layer 9: dlcli tune on Optuna, and its tables and plots."""
