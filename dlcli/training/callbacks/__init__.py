"""Keras callbacks of a dlcli run, one per module (as keras/src/callbacks): each imports Keras."""
