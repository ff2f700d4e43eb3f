"""Arrays without needless copies: NPZ members read straight into aligned memory, rows taken once.

TensorFlow can use a NumPy buffer in place (DLPack) only when it is 64-byte aligned and contiguous;
`np.load` gives 16-byte aligned arrays and reads a member through a temporary `bytes` of its full
size. Reading in chunks into an aligned buffer keeps the peak at one copy of the data, and the
training pipeline then shares that copy with TensorFlow (see `pipeline.as_tensor`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from dlcli.utils.errors import DataError

#: TensorFlow's CPU alignment (EIGEN_MAX_ALIGN_BYTES).
ALIGN = 64
_CHUNK = 1 << 22


def aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:

    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(size + ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start : start + size].view(dtype).reshape(shape)


def is_aligned(x: np.ndarray) -> bool:
    return x.flags["C_CONTIGUOUS"] and x.ctypes.data % ALIGN == 0


def read_npy(handle: BinaryIO, name: str) -> np.ndarray:
    """One `.npy` stream into an aligned array; object arrays (pickles) are refused."""

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

    if len(index) and np.any(np.diff(index) <= 0):
        raise ValueError("compact_rows needs strictly increasing row numbers")
    row_bytes = max(x[:1].nbytes, 1)
    block = max(1, _CHUNK // row_bytes)
    for start in range(0, len(index), block):
        rows = index[start : start + block]
        if rows[0] != start or rows[-1] != start + len(rows) - 1:  # not already in place
            x[start : start + len(rows)] = x[rows]
    return x[: len(index)]


class BadPixels(DataError):
    """Pixels a model cannot take, with the index of the first image concerned (for serve's 422)."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


def check_pixels(x, shape: list[int], dtype: str, source: str = "") -> np.ndarray:
    """The one check of image arrays before any runtime sees them (dlcli predict, the ONNX and TFLite
    runtimes, serve): the shape the model was trained on, finite values, and for integer pixels
    (uint8) values within that type's range, which a cast would wrap (1000 → 232) or truncate.
    Returns `x` as an array; raises BadPixels naming the first image (counting from 0)."""

    where = f"{source}: " if source else ""
    try:
        x = np.asarray(x)
        if x.dtype == object or x.dtype.kind not in "biuf":
            x = x.astype("float64")
    except (ValueError, TypeError):
        raise BadPixels(f"{where}expected arrays of numbers of shape {shape} per image") from None
    if list(x.shape[1:]) != list(shape):
        raise BadPixels(
            f"{where}images have shape {list(x.shape[1:])} per item (array {list(x.shape)}); the model "
            f"was trained on {list(shape)}: expected an array of shape [n, {', '.join(map(str, shape))}]",
            0,
        )
    flat = x.reshape(len(x), -1)
    if x.dtype.kind == "f":
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            raise BadPixels(
                f"{where}image {int(np.argmax(bad))} (counting from 0) holds NaN or infinite pixels "
                f"({int(bad.sum())} such images of {len(x)}); fix or drop them",
                int(np.argmax(bad)),
            )
    if np.dtype(dtype).kind in "iu" and x.dtype != np.dtype(dtype) and len(x):
        info = np.iinfo(dtype)
        bad = (flat < info.min).any(axis=1) | (flat > info.max).any(axis=1)
        if bad.any():
            raise BadPixels(
                f"{where}image {int(np.argmax(bad))} (counting from 0) has pixels outside {info.min}–"
                f"{info.max} ({int(bad.sum())} such images of {len(x)}; values from {flat.min():g} to "
                f"{flat.max():g}): the model was trained on {dtype} pixels; give raw pixels in that range",
                int(np.argmax(bad)),
            )
    return x
