"""A streamed table divided between the workers of a multi_worker run: each worker reads only its
own units (Parquet row groups, or byte ranges of a text file) in every pass, and the workers swap
what they learned through the strategy's collective all-reduce, so no worker reads the whole data.

- The statistics pass: each worker summarizes its units' train rows (running.py's summaries are
  mergeable), then every worker merges all the summaries in worker order, so every worker fits
  the very same preprocessing, and learns every unit's rows per split.
- Training: each worker shuffles and batches its own units' rows, per-replica batches of
  `batch_size / workers`. Every worker must take the same number of steps per epoch, so an epoch is
  as many steps as the worker with the fewest rows fills; a worker with more leaves its last rows
  of the epoch (its order is shuffled anew every epoch, so they are other rows every time).
- Scoring: each worker tallies its units; tallies and Keras metric states (sums) are added up.

Units are assigned before anything is read, balanced by size (rows from Parquet's metadata, bytes
of a text file), the largest first to the least loaded worker: the same assignment on every worker.

    >>> shard = Shard(worker=1, workers=2, owner=assign(stream, 2), start=start)
    >>> payloads = shard.exchange(b"...")   # every worker's bytes, in worker order
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq

from dlcli.utils.errors import DataError

if TYPE_CHECKING:
    from dlcli.io.streams import Stream


@dataclass
class Shard:
    """This worker's part of a streamed table and the way to swap bytes with the other workers."""

    worker: int
    workers: int
    owner: list[int]  # the worker that reads each unit
    start: Callable[[], Any]  # starts the strategy (TensorFlow's runtime) and returns it
    strategy: Any = field(default=None, repr=False)
    read: list[dict] = field(default_factory=list)  # after the statistics pass: each worker's units and rows

    def owns(self, unit: int) -> bool:
        return self.owner[unit] == self.worker

    def units(self) -> list[int]:
        return [i for i, w in enumerate(self.owner) if w == self.worker]

    def exchange(self, payload: bytes) -> list[bytes]:
        """Every worker's `payload`, in worker order (each worker calls this at the same point)."""

        if self.strategy is None:
            self.strategy = self.start()
        lengths = np.zeros(self.workers, "int64")
        lengths[self.worker] = len(payload)
        lengths = self._sum(lengths)
        words = max(1, -(-int(lengths.max()) // 8))
        slots = np.zeros((self.workers, words), "int64")  # each worker fills its own row; the sum has all
        slots[self.worker] = np.frombuffer(payload.ljust(words * 8, b"\0"), "int64")
        slots = self._sum(slots)
        return [slots[w].tobytes()[: int(lengths[w])] for w in range(self.workers)]

    def _sum(self, array: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        value = tf.constant(array)
        per_replica = self.strategy.run(lambda: tf.identity(value))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy()

    def exchange_arrays(self, meta: dict, arrays: dict | None = None) -> list[tuple[dict, dict]]:
        """`exchange` for a JSON-able dict and named number arrays; each worker's, in worker order."""
        return [unpack(p) for p in self.exchange(pack(meta, arrays or {}))]

    def agree_on_errors(self, error: Exception | None) -> None:
        """Every worker raises once any worker met an error (else the others would wait for it forever):
        its own error where it had one, else the first worker's, as a DataError."""
        mine = {"error": str(error) if error is not None else None}
        found = [meta["error"] for meta, _ in self.exchange_arrays(mine)]
        if error is not None:
            raise error
        first = next((f for f in found if f), None)
        if first is not None:
            raise DataError(f"worker {found.index(first)} stopped: {first}")


def pack(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """`meta` as JSON and the arrays as .npz (numbers only: read back without pickle)."""

    buffer = io.BytesIO()
    encoded = np.frombuffer(json.dumps(meta).encode(), "uint8")
    np.savez(buffer, _meta=encoded, **arrays)
    return buffer.getvalue()


def unpack(payload: bytes) -> tuple[dict, dict]:

    with np.load(io.BytesIO(payload), allow_pickle=False) as found:
        arrays = {k: found[k] for k in found.files}
    return json.loads(arrays.pop("_meta").tobytes().decode()), arrays


def assign(stream: Stream, workers: int) -> list[int]:
    """The worker of each unit: units by size, largest first, each to the least loaded worker."""
    sizes = unit_sizes(stream)
    load, owner = [0] * workers, [0] * len(sizes)
    for i in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        w = min(range(workers), key=lambda w: (load[w], w))
        owner[i], load[w] = w, load[w] + sizes[i]
    return owner


def unit_sizes(stream: Stream) -> list[int]:
    """Rows per unit for Parquet (its metadata), bytes for a text file."""
    if stream.kind != "Parquet":
        return [u.end - u.start for u in stream.units]

    meta, sizes = {}, []
    for unit in stream.units:
        if unit.path not in meta:
            meta[unit.path] = pq.ParquetFile(unit.path).metadata
        groups = range(unit.row_group, unit.row_group + unit.row_groups)
        sizes.append(sum(meta[unit.path].row_group(g).num_rows for g in groups))
    return sizes


def parquet_positions(stream: Stream) -> tuple[list[int], list[int]]:
    """Each Parquet unit's first row's position in its file and among all rows (from the metadata)."""
    offsets, first_global, in_file, total = [], [], {}, 0
    for unit, rows in zip(stream.units, unit_sizes(stream), strict=True):
        offsets.append(in_file.get(unit.path, 0))
        first_global.append(total)
        in_file[unit.path] = in_file.get(unit.path, 0) + rows
        total += rows
    return offsets, first_global


def epoch_steps(rows_per_worker: list[int], batch: int) -> int:
    """Steps every worker can take in an epoch of per-replica batches of `batch` rows: as many as
    the worker with the fewest rows fills (its last batch may be short)."""
    return min(-(-rows // batch) for rows in rows_per_worker)


def sum_metric_states(shard: Shard, metrics: list) -> None:
    """Add up the Keras metrics' state variables over the workers (Keras' metric states are sums,
    as tf.distribute adds them up across replicas), so `result()` is over every worker's rows."""

    variables = [v for m in metrics for v in m.variables]
    mine = {str(k): np.asarray(v.numpy()) for k, v in enumerate(variables)}
    everyone = [arrays for _, arrays in shard.exchange_arrays({}, mine)]
    for k, variable in enumerate(variables):
        variable.assign(sum(arrays[str(k)] for arrays in everyone))
