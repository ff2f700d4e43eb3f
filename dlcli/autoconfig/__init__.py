"""Layer 4: a first config written from the data (`dlcli init --data`): each column's role and why."""
