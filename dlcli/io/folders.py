"""Folders of files as tables, following `keras.utils.image_dataset_from_directory` and
`text_dataset_from_directory`: one subfolder per class (files in deeper folders count for their class
folder), hidden files and folders ignored, classes in alphabetical order.

A folder of images becomes a table of file paths (`path`, `label`), decoded later as batches stream
through tf.data; a folder of text files a table of their contents (`text`, `label`).

    >>> frame, found = read(Path("hymenoptera/train"))
    >>> found.kind, list(frame.columns)
    ('images', ['path', 'label'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dlcli.utils import formats
from dlcli.utils.errors import DataError

#: What tf.io.decode_image reads (Keras' image_dataset_from_directory takes the same).
#: The columns of a folder's table.
PATH, TEXT, LABEL = "path", "text", "label"


@dataclass
class Found:
    """What a folder held: `images` or `text` files per class, and the files passed over."""

    kind: str
    classes: list[str]
    ignored: list[str] = field(default_factory=list)  # files of other types

    def note(self, folder: Path, rows: int) -> str | None:
        if not self.ignored:
            return None
        shown = ", ".join(self.ignored[:3]) + (", …" if len(self.ignored) > 3 else "")
        return (
            f"{folder}: {len(self.ignored)} file(s) that are not {self.kind} ignored ({shown}); "
            f"{rows} {self.kind} files read"
        )


def _files(folder: Path) -> list[Path]:
    """Every visible file below `folder`, in sorted order, skipping hidden folders."""
    out = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if path.is_file() and all(not part.startswith(".") for part in relative):
            out.append(path)
    return out


def read(folder: Path) -> tuple[pd.DataFrame, Found]:
    """The folder as a table, one row per image or text file, indexed 1..n."""

    problem = formats.class_folder_problem(folder)
    if problem:
        raise DataError(problem)
    rows, ignored, kinds = [], [], set()
    classes = formats.class_folders(folder)
    for class_dir in classes:
        for path in _files(class_dir):
            suffix = path.suffix.lower()
            if suffix in formats.IMAGES or suffix in formats.CLASS_TEXTS:
                kinds.add("images" if suffix in formats.IMAGES else "text")
                rows.append((path, class_dir.name))
            else:
                ignored.append(str(path.relative_to(folder)))
    if not rows:
        raise DataError(
            f"{folder}: no image ({', '.join(formats.IMAGES)}) or text (.txt) files in its class "
            f"folders ({', '.join(c.name for c in classes)})"
        )
    if len(kinds) > 1:
        raise DataError(
            f"{folder}: holds both images and text files; a folder source is one or the other: move "
            "one kind out"
        )
    (kind,) = kinds
    empty = [c.name for c in classes if not any(label == c.name for _, label in rows)]
    if empty:
        raise DataError(f"{folder}: the class folder(s) {', '.join(empty)} hold no {kind} files")
    if kind == "images":
        frame = pd.DataFrame({PATH: [str(p) for p, _ in rows], LABEL: [c for _, c in rows]})
    else:
        frame = pd.DataFrame({TEXT: [_read_text(p) for p, _ in rows], LABEL: [c for _, c in rows]})
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame, Found(kind, [c.name for c in classes], ignored)


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def image_files(path: Path) -> list[str]:
    """predict's `--input`: one image, or every image below a folder (recursively, sorted)."""
    if path.is_file():
        return [str(path)]
    return [str(p) for p in _files(path) if p.suffix.lower() in formats.IMAGES]
