"""Layer 0: errors, the version, file formats, atomic writes, YAML with line marks, arrays, IDX files."""
