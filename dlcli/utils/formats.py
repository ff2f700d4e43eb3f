"""Every file format dlcli reads or writes, by suffix: the one table the readers, the checks of a
path and the messages consult.

    >>> formats.DELIMITED[".tsv"]
    '\t'
"""

from __future__ import annotations

from pathlib import Path

#: Delimited text files, with the separator each implies (None: sniffed from the file).
DELIMITED: dict[str, str | None] = {
    ".csv": ",",
    ".tsv": "\t",
    ".tab": "\t",
    ".txt": None,
    ".data": None,
    ".dat": None,
    ".test": None,  # UCI's adult.test and the like
}
#: Tables in other formats, by the kind pyarrow and pandas read them as.
OTHER_TABLES = {".parquet": "Parquet", ".pq": "Parquet", ".jsonl": "JSON lines", ".json": "JSON lines"}
PARQUET = (".parquet", ".pq")
#: What makes a folder a table split into files (a folder of class subfolders holds images or .txt).
TABLE_PARTS = {".csv", ".tsv", ".tab", ".parquet", ".pq", ".jsonl"}
#: NumPy arrays: images as pixels (x_train, y_train, x_test, y_test), never unpickled.
ARRAYS = (".npz", ".npy")
#: Image files a folder of class subfolders (or predict's --input) may hold.
IMAGES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
#: Text files a folder of class subfolders may hold, one document each.
CLASS_TEXTS = (".txt",)
#: What predict writes, by --output's suffix.
PREDICTIONS = (".csv", ".parquet", ".pq")
#: Suffixes of files of other kinds: never the name of a SavedModel's folder.
NOT_FOLDERS = (".onnx", ".tflite", ".keras", ".h5", ".pb", ".json", ".csv", ".parquet", ".npz", ".zip")


def hidden(path: Path, root: Path) -> bool:
    """Whether `path` is hidden below `root` (a part starting with `.` or `_`, as Spark and Hive
    mark their own files): left out of folders of tables."""
    return any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


def is_table_folder(path: str | Path) -> bool:
    """Whether `path` is a folder of table files (not one of class subfolders)."""
    folder = Path(path)
    return folder.is_dir() and any(
        p.is_file() and p.suffix.lower() in TABLE_PARTS and not hidden(p, folder) for p in folder.rglob("*")
    )


def visible(path: Path) -> bool:
    return not path.name.startswith(".")


def class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and visible(p))


def class_folder_problem(folder: Path) -> str | None:
    """Why `folder` cannot be a source of classes (fewer than two class subfolders), or None."""
    try:
        classes = class_folders(folder)
    except OSError as exc:
        return f"{folder}: cannot be listed ({exc})"
    if len(classes) >= 2:
        return None
    found = f"only {classes[0].name}/" if classes else "no subfolders"
    return (
        f"{folder} is a folder with {found}: a folder source holds one subfolder per class (e.g. "
        f"{folder.name}/ants/ and {folder.name}/bees/), at least two; or name a data file"
    )
