"""IDX files, as MNIST, Fashion-MNIST, EMNIST and KMNIST ship (`train-images-idx3-ubyte.gz`, …):
a folder of the four (train and test images and labels), or one images file with `data.labels`.

The format (yann.lecun.com/exdb/mnist): two zero bytes, a type code, the number of dimensions, each
dimension as a big-endian uint32, then the values in big-endian order. Read with NumPy, gzip or not;
the header's size is checked against the bytes that follow, so a truncated download is named.

    >>> arrays = read_folder(Path("fashion-mnist/"))      # x_train, y_train, x_test, y_test
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import TYPE_CHECKING

from dlcli.utils.errors import DataError

if TYPE_CHECKING:
    import numpy as np

#: The type codes of the format, as NumPy dtypes (big-endian).
TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
#: An IDX file's name: `…-idx3-ubyte`, `….idx1-ubyte`, gzipped or not.
NAME = re.compile(r"[-.]idx\d-ubyte(\.gz)?$", re.IGNORECASE)
#: Largest array read (values × size): far above EMNIST's 700 MB, far below a crafted header's 2**128.
MAX_BYTES = 16 << 30


def is_idx(path: str | Path) -> bool:
    return bool(NAME.search(Path(path).name))


def folder_files(folder: Path) -> dict[str, Path] | None:
    """The four files of a folder of IDX files by role (x_train, y_train, x_test, y_test), or None
    when the folder holds no IDX file. Train files' names hold `train`, test files' `t10k` or `test`;
    images are idx3 (or more dimensions), labels idx1."""
    found = [p for p in sorted(folder.iterdir()) if p.is_file() and is_idx(p)] if folder.is_dir() else []
    if not found:
        return None
    roles: dict[str, list[Path]] = {}
    for path in found:
        name = path.name.lower()
        split = "test" if ("t10k" in name or "test" in name) else "train" if "train" in name else None
        kind = "y" if re.search(r"idx1-ubyte", name) else "x"
        if split is not None:
            roles.setdefault(f"{kind}_{split}", []).append(path)
    missing = [r for r in ("x_train", "y_train") if r not in roles]
    doubled = [f"{r} ({', '.join(p.name for p in ps)})" for r, ps in roles.items() if len(ps) > 1]
    if missing or doubled:
        wrong = f"missing {', '.join(missing)}" if missing else f"more than one {'; '.join(doubled)}"
        raise DataError(
            f"{folder}: a folder of IDX files needs one train images file (…train-images-idx3-ubyte[.gz]) "
            f"and one train labels file (…train-labels-idx1-ubyte[.gz]), and at most one of each for test "
            f"(t10k-…); {wrong} among {', '.join(p.name for p in found)}"
        )
    if ("x_test" in roles) != ("y_test" in roles):
        raise DataError(f"{folder}: the test images and the test labels come together; one is missing")
    return {role: paths[0] for role, paths in roles.items()}


def read(path: Path) -> np.ndarray:
    """One IDX file as an array in native byte order."""
    import numpy as np

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in TYPES or head[3] == 0:
                raise DataError(
                    f"{path}: not an IDX file (it starts {head[:4]!r}; expected two zero bytes, a type "
                    "code and the number of dimensions)"
                )
            dims = [int.from_bytes(handle.read(4), "big") for _ in range(head[3])]
            dtype = np.dtype(TYPES[head[2]])
            size = int(np.prod(dims, dtype=object)) * dtype.itemsize
            if size > MAX_BYTES:
                raise DataError(
                    f"{path}: its header declares {dims} values, {size:,} bytes; too large to read"
                )
            data = handle.read(size)
            extra = handle.read(1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot be read ({type(exc).__name__}: {exc}); download it again") from None
    if len(data) < size or extra:
        raise DataError(
            f"{path}: its header says {' × '.join(map(str, dims))} values ({size:,} bytes) but "
            f"{'only ' + format(len(data), ',') if len(data) < size else 'more'} bytes follow: a truncated "
            "or altered file; download it again"
        )
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def read_arrays(path: Path, labels: Path | None) -> tuple[dict[str, np.ndarray], list[Path]] | None:
    """`x_train`, `y_train` (and `x_test`, `y_test`) from a folder of IDX files, or from one images
    file and its labels file, and the files read; None when `path` is not IDX."""
    files = folder_files(path) if path.is_dir() else None
    if files is None and not (path.is_file() and is_idx(path)):
        return None
    if files is None:
        if labels is None:
            raise DataError(
                f"{path}: an IDX images file needs its labels: set data.labels to the …-labels-idx1-ubyte "
                "file (or give data.path the folder holding the four files)"
            )
        files = {"x_train": path, "y_train": labels}
    arrays = {role: read(file) for role, file in files.items()}
    for split in ("train", "test"):
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is not None and (y.ndim != 1 or len(x) != len(y)):
            raise DataError(
                f"{files[f'y_{split}']}: {len(y)} labels (shape {list(y.shape)}) for the {len(x)} images of "
                f"{files[f'x_{split}']}; expected one label per image"
            )
    return arrays, sorted(files.values())
