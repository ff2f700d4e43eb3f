"""Layer 2: data as it ships: sources, tables, streams, splits, class folders, series, image files."""
