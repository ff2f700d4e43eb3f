"""Arrays without needless copies: NPZ members read straight into aligned memory, rows taken once.

TensorFlow can use a NumPy buffer in place (DLPack) only when it is 64-byte aligned and contiguous;
`np.load` gives 16-byte aligned arrays and reads a member through a temporary `bytes` of its full
size. Reading in chunks into an aligned buffer keeps the peak at one copy of the data, and the
training pipeline then shares that copy with TensorFlow (see `pipeline.as_tensor`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import numpy as np

#: TensorFlow's CPU alignment (EIGEN_MAX_ALIGN_BYTES).
ALIGN = 64
_CHUNK = 1 << 22


def aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    import numpy as np

    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(size + ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start : start + size].view(dtype).reshape(shape)


def is_aligned(x: np.ndarray) -> bool:
    return x.flags["C_CONTIGUOUS"] and x.ctypes.data % ALIGN == 0


def read_npy(handle: BinaryIO, name: str) -> np.ndarray:
    """One `.npy` stream into an aligned array; object arrays (pickles) are refused."""
    import numpy as np

    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
    if dtype.hasobject:
        raise ValueError(f"{name} holds Python objects, which would need pickle to read")
    out = aligned_empty(tuple(reversed(shape)) if fortran else shape, dtype)
    view = memoryview(out.reshape(-1).view(np.uint8))
    done = 0
    while done < len(view):
        got = handle.readinto(view[done : done + _CHUNK])
        if not got:
            raise ValueError(f"{name} is truncated ({done} of {len(view)} bytes)")
        done += got
    return out.T if fortran else out


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of a `.npz` file (stored or deflated), by key."""
    out = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            with archive.open(member) as handle:
                out[member[: -len(".npy")]] = read_npy(handle, member)
    return out


def take_rows(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`x[index]` into aligned memory, or `x` itself when the index keeps every row in order."""
    import numpy as np

    if len(index) == len(x) and np.array_equal(index, np.arange(len(x))):
        return x
    out = aligned_empty((len(index), *x.shape[1:]), x.dtype)
    np.take(x, index, axis=0, out=out)
    return out


def compact_rows(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`x[index]` for an increasing `index`, made by moving those rows to the front of `x` in place
    (the rows not in `index` are overwritten); returns the view `x[:len(index)]`.

    Each block of rows is gathered into a small temporary before it is written, and the rows a
    block reads all lie at or after its own start (index[k] >= k), which no earlier block wrote.
    """
    import numpy as np

    if len(index) and np.any(np.diff(index) <= 0):
        raise ValueError("compact_rows needs strictly increasing row numbers")
    row_bytes = max(x[:1].nbytes, 1)
    block = max(1, _CHUNK // row_bytes)
    for start in range(0, len(index), block):
        rows = index[start : start + block]
        if rows[0] != start or rows[-1] != start + len(rows) - 1:  # not already in place
            x[start : start + len(rows)] = x[rows]
    return x[: len(index)]
