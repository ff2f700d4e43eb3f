"""Layer 7: `dlcli explain`: which columns, words and pixels a run's predictions rest on."""
