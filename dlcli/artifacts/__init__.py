"""Layer 5: a finished run read back safely, the inputs predict reads, exported models' runtimes."""
