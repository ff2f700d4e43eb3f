"""What evaluate and predict read from a finished run's user: a table read as the run's training data
was read, image arrays, or image files (one, a folder, a CSV of paths). Shared by the TensorFlow path
(inference.py) and the exported models' runtimes (lite.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pandas as pd

from dlcli.io import data as data_mod
from dlcli.io import folders
from dlcli.utils import formats
from dlcli.utils.errors import DataError

if TYPE_CHECKING:
    from dlcli.config.config import Config
    from dlcli.preprocessing.base import Preprocessor


def read_input(prep: Preprocessor, path: Path, config: Config | None, labelled: bool = True) -> Any:
    """A table for tabular and time-series runs, read as the run's data was (header, separator,
    missing markers); `(x, y or None)` for image runs."""
    if prep.decodes_files:  # image files, alone or beside other columns
        return image_files(prep, path, config, labelled)
    if not prep.arrays:
        return read_table_input(path, config, labelled)
    return image_arrays(path)


def read_table_input(path: Path, config: Config | None, labelled: bool = True) -> pd.DataFrame:
    """A table read as the run's data was (header, separator, missing markers); with default settings
    where the run's config cannot be read. Every column is kept (data.drop's too: a submission needs
    its ids): the model takes only its own."""
    reading = reading_for(config.data, path) if config is not None else None
    return data_mod.read_table(path, reading, labelled=labelled)


def image_arrays(path: Path) -> tuple[Any, Any]:
    """`(x, y or None)` from a .npy/.npz: x_test, x or x_train (and its labels), or its one array."""
    arrays = data_mod.read_arrays(path)
    for x_key, y_key in (("x_test", "y_test"), ("x", "y"), ("x_train", "y_train")):
        if x_key in arrays:
            y = arrays.get(y_key)
            return (arrays[x_key], None if y is None else y.reshape(len(y)))
    if len(arrays) == 1:
        return (next(iter(arrays.values())), None)
    raise DataError(f"{path}: expected an array named x or x_test (it holds {', '.join(sorted(arrays))})")


def image_files(prep: Preprocessor, path: Path, config: Config | None, labelled: bool) -> pd.DataFrame:
    """Image files to score: one image, every image below a folder (for evaluate: a folder of class
    subfolders), or a table with the run's column of paths (relative to the table's folder)."""

    column = prep.image["column"]
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (resolved to {path.resolve()})")
    listed = path.is_dir() and not (labelled and config is not None)  # predict: every image below
    if config is not None and not listed and path.suffix.lower() not in formats.IMAGES:
        reading = None if path.is_dir() else reading_for(config.data, path)  # a table, or class folders
        source = data_mod.read_source(config, path, labelled, reading, image_column=column)
        prep.warnings.extend(source.notes)
        return source.frame.rename(columns={folders.PATH: column})
    if listed or path.suffix.lower() in formats.IMAGES:
        paths = folders.image_files(path)
        if not paths:
            raise DataError(f"{path}: no image files ({', '.join(formats.IMAGES)}) in it or below it")
        frame = pd.DataFrame({column: paths}, index=pd.RangeIndex(1, len(paths) + 1))
    else:  # a table, where the run's config cannot be read
        frame = data_mod.read_table(path, None, labelled=labelled)
        if column in frame.columns:
            data_mod.absolute_paths(frame, column, path.parent)
    if column in frame.columns:
        skip = config.data.skip_bad_files if config is not None else False
        frame, _ = data_mod.decodable(frame, column, prep.image["channels"], skip, str(path), prep.warnings)
    return frame


def reading_for(data, path: Path) -> data_mod.Reading:
    """How to read a file for evaluate or predict: as the training data was (header, column names,
    missing markers, stripping); its separator and quoting too when it has the training file's
    suffix, else those its own suffix implies (a CSV of messages written by pandas next to a TSV
    read with `quoting: none`)."""
    reading = data_mod.Reading.of(data)
    trained_on = Path(data.path or urlparse(data.url or "").path)
    if path.suffix.lower() != trained_on.suffix.lower():
        reading = dataclasses.replace(reading, sep=None, quoting="minimal")
    return reading
