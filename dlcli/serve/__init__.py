"""Layer 8: the HTTP server and its request bodies."""
