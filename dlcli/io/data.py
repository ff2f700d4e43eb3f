"""Data sources, the offline mirror and download cache, and the train/validation/test split.

A source yields either a table (pandas DataFrame; tabular data and time series) or arrays (NumPy;
images from NPZ files and Keras datasets). `load(config)` returns both kinds as a `Loaded`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from dlcli.config.checks import suggest
from dlcli.config.config import DATASET_TARGET, KERAS_DATASETS, Config
from dlcli.io import columns as columns_mod
from dlcli.io import folders, folds, hashsplit, streams, timeseries
from dlcli.io.columns import Columns
from dlcli.io.images import check_files
from dlcli.io.reading import Reading, is_table, row_where  # noqa: F401 - row_where: used by importers
from dlcli.io.reading import read_table as _read
from dlcli.utils import arrays as arrays_mod
from dlcli.utils import formats
from dlcli.utils import idx as idx_files
from dlcli.utils.errors import ConfigError, DataError
from dlcli.utils.files import cache_dir, sha256_of

SPLITS = ("train", "validation", "test")


@dataclass
class Loaded:
    """Data split three ways: DataFrames for tables, `(x, y)` array pairs for arrays."""

    splits: dict[str, Any]
    sha256: str | None = None
    source: str = ""
    columns: Columns | None = None  # tables: the columns used and ignored
    notes: list[str] = field(default_factory=list)  # what was decided for the user (headerless, …)
    skipped: list[str] = field(default_factory=list)  # image files left out (data.skip_bad_files)
    stream: Any = None  # streams.Stream: a table read in pieces (data.stream); splits is then empty


MIRROR_HELP = (
    "to work offline, put the file in a folder and set DLCLI_DATA_DIR to that folder "
    "(see `dlcli doctor` for where dlcli looks)"
)


def mirror_dir() -> Path | None:
    """`$DLCLI_DATA_DIR`, the offline mirror checked before any download; a DataError when it is set to
    a folder that does not exist (a typo would otherwise send dlcli to the network without a word)."""
    value = os.environ.get("DLCLI_DATA_DIR")
    if not value:
        return None
    folder = Path(value).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"DLCLI_DATA_DIR={value}: no such folder (resolved to {folder.resolve()}); set it to the "
            "folder that holds your offline copies of the data, or unset it to download"
        )
    return folder


def keras_datasets_dir() -> Path:
    """Where keras.datasets keeps what it downloaded ($KERAS_HOME/datasets)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def fetch_url(url: str, sha256: str) -> Path:
    """The verified local copy of `url`: from the mirror, the cache, or downloaded once into the cache."""
    name = Path(urlparse(url).path).name or "download"
    mirror = mirror_dir()
    if mirror is not None and (mirror / name).is_file():
        local = mirror / name
        actual = sha256_of(local)
        if actual != sha256.lower():
            raise DataError(
                f"{local}: sha256 is {actual} but the config expects {sha256} (data.sha256); the mirror "
                "file differs from the one the config was written for: fix data.sha256 or the file"
            )
        return local
    import keras

    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)  # get_file falls back to /tmp/.keras for a missing folder
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Keras' progress bar; stdout may carry --json
            got = keras.utils.get_file(
                fname=name,
                origin=url,
                file_hash=sha256,
                hash_algorithm="sha256",
                cache_dir=str(cache),
                cache_subdir="downloads",
            )
    except ValueError as exc:  # hash mismatch after download
        raise DataError(f"{url}: the downloaded file failed verification: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - urllib raises many kinds; all mean "could not download"
        raise DataError(
            f"{url}: download failed ({exc}). Tried {_tried_mirror(mirror, name)}, the cache "
            f"{cache / 'downloads' / name}, then the address. Check the address and your connection; "
            f"{MIRROR_HELP} as {name}"
        ) from None
    return Path(got)


def _tried_mirror(mirror: Path | None, name: str) -> str:
    return f"{mirror / name} (not there)" if mirror is not None else "$DLCLI_DATA_DIR (not set)"


def read_table(path: Path, reading: Reading | None = None, labelled: bool = True) -> pd.DataFrame:
    """A table file as a DataFrame indexed by line (or row) number (see reading.py); notes dropped."""
    return _read(Path(path), reading or Reading(), labelled=labelled)[0]


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a `.npz` (by key) or `.npy` (as `x`), never unpickling objects."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (resolved to {path.resolve()})")
    try:
        if zipfile.is_zipfile(path):
            return arrays_mod.read_npz(path)
        with open(path, "rb") as handle:
            return {"x": arrays_mod.read_npy(handle, path.name)}
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: cannot be read as NumPy arrays ({type(exc).__name__}: {exc})") from None


def load(config: Config) -> Loaded:
    """Read the configured source and split it (see DESIGN.md, Data sources)."""
    data = config.data
    if data.dataset in KERAS_DATASETS:
        return _split_arrays(config, _keras_dataset(data.dataset))
    if data.dataset is not None:
        frame = _sklearn_dataset(data.dataset)
        return _split_table(config, frame, sha256=None, source=f"scikit-learn {data.dataset}")
    path = fetch_url(data.url, data.sha256) if data.url else Path(data.path)
    if data.path is not None and any(ch in data.path for ch in "*?["):  # a glob of table files
        return _table_files(config, path)
    if not path.exists():
        mirror = os.environ.get("DLCLI_DATA_DIR")
        raise DataError(
            f"{config.where('data', 'path')}: {path}: no such file or folder; a relative data.path is "
            "looked for beside the config, then in $DLCLI_DATA_DIR "
            f"({'set to ' + mirror if mirror else 'not set'})"
        )
    if path.suffix.lower() in formats.ARRAYS:
        return _split_arrays(config, _npz_source(path))
    labels = Path(data.labels) if data.labels else None
    found = idx_files.read_arrays(path, labels)  # MNIST's family as it ships: IDX files
    if found is not None:
        arrays, read = found
        return _split_arrays(config, (arrays, fingerprint(read), str(path)))
    tables = _table_files(config, path)
    if tables is not None:
        return tables
    source = read_source(config, path)
    loaded = _split_table(config, source.frame, source.sha256, str(path), source.image)
    loaded.notes[:0] = source.notes
    loaded.skipped = source.skipped + loaded.skipped
    return loaded


def _table_files(config: Config, path: Path) -> Loaded | None:
    """A table in several files (a folder of them, a glob), or one to stream (data.stream); None
    for one file read whole and for folders of class subfolders."""

    paths = streams.table_files(config.data.path) if config.data.path else None
    if paths is None and (path.is_dir() or not is_table(path, Reading.of(config.data))):
        return None
    stream, note = streams.should_stream(config, paths or [path])
    where = str(path)
    if stream:
        opened = streams.open_stream(config, paths or [path])
        return Loaded({}, fingerprint(paths or [path]), where, notes=[n for n in [note] if n], stream=opened)
    if paths is None:
        return None

    frames, notes = [], []
    for file in paths:
        source = read_source(config, file)
        frames.append(source.frame)
        notes += source.notes
    frame = pd.concat(frames, ignore_index=True)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    loaded = _split_table(config, frame, fingerprint(paths), f"{where} ({len(paths)} files)")
    loaded.notes[:0] = notes
    return loaded


def fingerprint(paths: list[Path]) -> str:
    """The sha256 of the files when they are small, else of their names, sizes and modification times
    (hashing gigabytes would cost a pass over the data)."""
    if len(paths) == 1 and paths[0].stat().st_size < 1 << 30:
        return sha256_of(paths[0])
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@dataclass
class Source:
    """A table as read: from a file, or from a folder of class subfolders (images or text files)."""

    frame: pd.DataFrame
    sha256: str | None
    notes: list[str] = field(default_factory=list)
    image: str | None = None  # the column of image file paths
    skipped: list[str] = field(default_factory=list)


def read_source(
    config: Config,
    path: Path,
    labelled: bool = True,
    reading: Reading | None = None,
    image_column: str | None = None,
) -> Source:
    """`path` as a table: a folder (data.path, data.test_path, evaluate --data) or a file (read with
    `reading`, default the config's), with image files (preprocessing.image.column, or
    `image_column`) checked and their paths made absolute."""

    data, image = config.data, config.preprocessing.image
    if path.is_dir():
        frame, found = folders.read(path)
        notes = [n for n in [found.note(path, len(frame))] if n]
        if found.kind == "text" and (
            config.preprocessing.text is None or folders.TEXT not in config.preprocessing.text.columns
        ):
            raise DataError(
                f"{path}: a folder of text files reads as columns {folders.TEXT!r} (each file's "
                f"contents) and {folders.LABEL!r} (its class folder): add preprocessing.text: "
                f"{{columns: [{folders.TEXT}], output_mode: tf_idf}} (or int, for an Embedding)"
            )
        source = Source(frame, _listing_sha256(path), notes, folders.PATH if found.kind == "images" else None)
    else:
        frame, notes = _read(path, reading or Reading.of(data, config.where), labelled=labelled)
        source = Source(frame, sha256_of(path), notes, image_column or image.column)
        if source.image is not None and source.image in frame.columns:
            absolute_paths(frame, source.image, path.parent)
    if source.image is not None and source.image in source.frame.columns:
        source.frame, source.skipped = decodable(
            source.frame, source.image, image.channels, data.skip_bad_files, str(path), source.notes
        )
    return source


def absolute_paths(frame: pd.DataFrame, column: str, base: Path) -> None:
    """A table's image paths, relative to the table's folder, made absolute (in place)."""
    frame[column] = [
        str(p if Path(p).is_absolute() else (base / p).resolve()) if isinstance(p, str) else p
        for p in frame[column]
    ]


def decodable(
    frame: pd.DataFrame, column: str, channels: int, skip: bool, where: str, notes: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """The rows whose image file decodes, and the files left out (a DataError unless `skip`; a note
    names them when skipped)."""

    paths = frame[column].fillna("").astype(str).to_numpy(dtype=object)
    bad, named = check_files(paths, channels, where, skip)
    if bad:
        frame = frame.drop(index=frame.index[bad])
        notes.append(
            f"{where}: {len(bad)} image file(s) that cannot be decoded left out (data.skip_bad_files): "
            + ", ".join(named[:3])
            + (", …" if len(named) > 3 else "")
        )
    return frame, named


def _listing_sha256(folder: Path) -> str:
    """A folder's fingerprint: the sha256 of its files' relative paths and sizes (reading every image
    to hash it would cost a pass over the data)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def _keras_dataset(name: str) -> tuple[dict, str | None, str]:
    mirror = mirror_dir()
    if mirror is not None and (mirror / f"{name}.npz").is_file():
        # Read the mirror with NumPy: keras.datasets rejects files whose hash differs from its own.
        local = mirror / f"{name}.npz"
        return read_arrays(local), sha256_of(local), str(local)
    import keras

    try:
        with contextlib.redirect_stdout(sys.stderr):  # Keras' progress bar; stdout may carry --json
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as exc:  # noqa: BLE001 - Keras raises a bare Exception for a failed download
        raise DataError(
            f"dataset {name}: not found offline and the download failed ({type(exc).__name__}: {exc}). "
            f"Tried {_tried_mirror(mirror, f'{name}.npz')}, Keras' cache {keras_datasets_dir()}, then Keras' "
            f"download. {MIRROR_HELP} as {name}.npz, holding arrays x_train, y_train, x_test, y_test "
            f'(on a machine with internet: python -c "import keras, numpy; (a, b), (c, d) = '
            f"keras.datasets.{name}.load_data(); numpy.savez('{name}.npz', x_train=a, y_train=b, "
            f'x_test=c, y_test=d)")'
        ) from None
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    # some of Keras' loaders (fashion_mnist) return read-only views of the files they read; the split
    # moves rows in place and TensorFlow shares the memory: writable copies, once
    arrays = {k: v if v.flags.writeable else v.copy() for k, v in arrays.items()}
    return arrays, None, f"keras.datasets.{name}"


def _npz_source(path: Path) -> tuple[dict, str, str]:
    arrays = read_arrays(path)
    if "x_train" not in arrays or "y_train" not in arrays:
        raise DataError(
            f"{path}: an NPZ data file needs arrays x_train and y_train (and optionally x_test, y_test); "
            f"it holds {', '.join(sorted(arrays)) or 'nothing'}"
        )
    return arrays, sha256_of(path), str(path)


def _sklearn_dataset(name: str) -> pd.DataFrame:
    import sklearn.datasets  # scikit-learn where it is needed only: predict through ONNX never loads it

    bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame
    frame.index = pd.RangeIndex(1, len(frame) + 1)  # row numbers, as reading.py gives every table
    if name in ("iris", "wine", "breast_cancer"):  # class names read better than codes in predictions
        frame[DATASET_TARGET] = [str(bunch.target_names[i]) for i in bunch.target]
    return frame


def _split_arrays(config: Config, source: tuple[dict, str | None, str]) -> Loaded:

    arrays, sha, where = source
    x, y = arrays["x_train"], np.asarray(arrays["y_train"]).reshape(len(arrays["x_train"]), -1).squeeze(-1)
    split = config.data.split
    own_test = "x_test" in arrays and "y_test" in arrays
    if own_test and split.test is not None:
        raise ConfigError(
            f"data.split.test: {where} has its own test split (got split.test={split.test}); "
            "remove data.split.test to use it"
        )
    parts: dict[str, Any] = {}
    if own_test:
        parts["test"] = (arrays["x_test"], np.asarray(arrays["y_test"]).reshape(len(arrays["x_test"])))
        test_frac = 0.0
    else:
        test_frac = split.test_fraction
    index = np.arange(len(x))
    chunks = _split_index(config, index, y, test_frac)
    for name in ("validation", "test"):  # the small parts are copied out first...
        if chunks[name] is not None:
            parts[name] = (arrays_mod.take_rows(x, chunks[name]), y[chunks[name]])
    # ...then the training rows, in file order, are moved to the front of x where they are: no second
    # copy of the largest part (47 MB on MNIST); aligned, so TensorFlow shares it too
    train = np.sort(chunks["train"])
    parts["train"] = (arrays_mod.compact_rows(x, train), y[train])
    return Loaded({name: parts[name] for name in SPLITS if name in parts}, sha, where)


def require_columns(config: Config, columns: list, source: str) -> None:
    """The target, time, split and key columns the config names are in the table (a DataError with
    a did-you-mean, and for a headerless file how to name its columns)."""
    data = config.data
    for key, column in (
        (("data", "target"), data.target_column),
        (("data", "time_column"), data.time_column),
        (("data", "split", "column"), data.split.column),
        (("data", "split", "key"), data.split.key),
        (("data", "series_id"), data.series_id),
    ):
        if column is not None and column not in columns:
            message = _missing_column(source, config.where(*key), column, columns)
            if list(columns[:1]) == ["column_1"] and data.columns is None:
                message += (
                    "; the file has no header row (its first row holds numbers), so its columns are "
                    "numbered: name them with data.columns, or give the target as column_N"
                )
            raise DataError(message)


def _split_table(
    config: Config, frame: pd.DataFrame, sha256: str | None, source: str, image: str | None = None
) -> Loaded:
    """Drop, order, fill and check the whole file, then split it: every count and line in a message
    is the file's own. `image`: the column of image file paths, if any."""

    data = config.data
    require_columns(config, list(frame.columns), source)
    cols = columns_mod.resolve(config, frame, source, image)
    frame = frame.drop(columns=[c for c in data.drop if c in frame.columns])
    order = [c for c in (data.series_id, data.time_column) if c is not None]
    if order:  # several series: each one's rows together, in time order
        frame = frame.sort_values(order, kind="stable")
    notes = list(cols.notes)
    if config.preprocessing.window is not None:
        frame = timeseries.fill(config, frame, cols, source, notes)
    columns_mod.check_table(config, frame, cols, source)
    if data.split.column is not None:
        return Loaded(_split_by_column(frame, data.split.column, source), sha256, source, cols, notes)
    parts: dict[str, Any] = {}
    test_frac = data.split.test_fraction
    skipped: list[str] = []
    if data.test_path is not None:
        test_source = str(data.test_path)
        read = read_source(config, Path(data.test_path))
        test = read.frame.drop(columns=[c for c in data.drop if c in read.frame.columns])
        columns_mod.check_table(config, test, cols, test_source)
        parts["test"] = test
        notes += read.notes
        skipped += read.skipped
        test_frac = 0.0
    if data.split.key is not None:
        parts.update(_split_by_key(config, frame, test_frac))
        return Loaded({n: parts[n] for n in SPLITS if n in parts}, sha256, source, cols, notes, skipped)
    strata = config.stratify_column
    y = frame[strata].to_numpy() if strata is not None else None
    if data.series_id is not None:  # each series cut in time order on its own
        chunks = _split_each_series(config, frame[data.series_id], test_frac)
    else:
        chunks = _split_index(config, np.arange(len(frame)), y, test_frac)
    for name, idx in chunks.items():
        if idx is not None:
            parts[name] = frame.iloc[idx]
    return Loaded(parts, sha256, source, cols, notes, skipped)


def _split_each_series(config: Config, ids: pd.Series, test_frac: float) -> dict[str, Any]:
    """Positions of each split: every series cut in time order by data.split's fractions."""

    parts: dict[str, list] = {name: [] for name in SPLITS}
    for start, end in timeseries.blocks(ids):
        for name, idx in _split_index(config, np.arange(start, end), None, test_frac).items():
            if idx is not None:
                parts[name].append(idx)
    return {name: np.concatenate(idx) if idx else None for name, idx in parts.items()}


def _split_index(config: Config, index, y, test_frac: float) -> dict[str, Any]:
    """Indices for train/validation/test: stratified for classification, in order when shuffle is off;
    with train.fold, the fold's rows of what the test split leaves (io/folds.py)."""
    split = config.data.split
    val_frac = 0.0 if config.train.fold is not None else split.validation
    out: dict[str, Any] = {"train": index, "validation": None, "test": None}
    n = len(index)
    if not config.shuffles:
        n_test, n_val = round(n * test_frac), round(n * val_frac)
        n_train = n - n_test - n_val
        out["train"] = index[:n_train]
        out["validation"] = index[n_train : n_train + n_val] if n_val else None
        out["test"] = index[n_train + n_val :] if n_test else None
    else:
        rest = index
        if test_frac:
            rest, out["test"] = _cut(config, index, None if y is None else y[index], test_frac, "test")
        if val_frac:
            labels = None if y is None else y[rest]
            out["train"], out["validation"] = _cut(
                config, rest, labels, val_frac / (1 - test_frac), "validation"
            )
        else:
            out["train"] = rest
    if config.train.fold is not None:
        out["train"], out["validation"] = folds.split(
            config, out["train"], None if y is None else y[out["train"]]
        )
    return out


def _cut(config: Config, idx, labels, frac: float, what: str):
    from sklearn.model_selection import train_test_split  # as _sklearn_dataset's

    try:
        return train_test_split(idx, test_size=frac, random_state=config.seed, stratify=labels)
    except ValueError as exc:
        raise DataError(
            f"cannot split off the {what} rows ({exc}); a stratified split needs at least 2 rows of "
            "every class in each part: use more data or smaller data.split fractions"
        ) from None


def _split_by_column(frame: pd.DataFrame, column: str, source: str) -> dict[str, Any]:

    labels = hashsplit.codes(frame, 0, 0, column=column, source=source)
    rest = frame.drop(columns=[column])
    return {name: rest[labels == code] for code, name in enumerate(SPLITS) if (labels == code).any()}


def _split_by_key(config: Config, frame: pd.DataFrame, test_frac: float) -> dict[str, Any]:
    """data.split.key: each row's split from the hash of its key (the same as when streamed)."""

    split, train = config.data.split, config.train
    fold = (train.folds, train.fold) if train.fold is not None else None
    labels = hashsplit.codes(frame, split.validation, test_frac, key=split.key, fold=fold)
    return {name: frame[labels == code] for code, name in enumerate(SPLITS) if (labels == code).any()}


def _missing_column(source: str, where: str, column: str, columns: list[str]) -> str:
    hint = suggest(column, [str(c) for c in columns])
    return f"{where}: column {column!r} not found in {source} (it has {', '.join(map(str, columns))}){hint}"
