"""Layer 9: cross-validation (`dlcli train --folds K`): a run per fold in one folder, mean and spread."""
