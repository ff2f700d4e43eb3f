"""The statistics pass of a streamed table: one read of every unit, in file order, that splits each
row (hashsplit.py), checks it as a whole file would be checked, and fits the preprocessing on the
train rows only from bounded summaries (running.py), never from the rows themselves.

What it fits is what the in-memory path fits, through the same classes and the same JSON state:
- numeric: mean imputation from the running mean; median from the row sample; then the scaler on
  the imputed values (standard: the moments with the missing values filled in; minmax: the range;
  robust: the sample's median and quartiles);
- categorical: the counted categories, at most `MAX_CATEGORIES` per column, kept by frequency; the
  rest encode as a category not seen in training (one-hot: all zeros), an "other" bucket;
- the target: its classes (exactly counted) or its scaling.

    >>> prep, layout = fit(config, stream, progress)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlcli.io import columns as columns_mod
from dlcli.io import hashsplit, shards
from dlcli.io.data import require_columns
from dlcli.metrics.running import Counts, Moments, Sample
from dlcli.preprocessing import preprocessing
from dlcli.preprocessing.base import Preprocessor
from dlcli.preprocessing.transforms import CategoricalEncoder, NumericTransformer, TargetEncoder
from dlcli.utils.errors import ConfigError, DataError, DlcliError

if TYPE_CHECKING:
    import pandas as pd

    from dlcli.config.config import Config
    from dlcli.io.shards import Shard
    from dlcli.io.streams import Stream

#: Categories kept per categorical column of a streamed table (the most frequent).
MAX_CATEGORIES = 1000
#: Classes a streamed classification target may have (they are counted exactly).
MAX_CLASSES = 10_000


@dataclass
class Layout:
    """What the statistics pass learned about the stream's shape: rows per unit, each unit's first
    row's position in its file, and rows per split per unit (TRAIN, VALIDATION, TEST)."""

    rows: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    split_rows: list[list[int]] = field(default_factory=list)
    first_global: list[int] = field(default_factory=list)  # each unit's first row among all rows

    def total(self, split: int) -> int:
        return sum(r[split] for r in self.split_rows)


@dataclass
class _Tallies:
    """The train rows' summaries: the numeric columns' moments, a row sample (the numeric columns,
    then each target's value), the categories, and per target (data.target, one or several) its
    moments (regression) or classes (classification)."""

    moments: Moments
    sample: Sample
    categories: list[Counts]
    missing: list[int]  # missing cells per categorical column (train rows)
    target_moments: list[Moments]
    classes: list[Counts]
    train_rows: int = 0
    #: Per target, each label of the validation and test rows where it first appears, `(file,
    #: line)`: a class the train rows lack is refused before training, not found at scoring.
    held_out: list[dict] = field(default_factory=list)

    @classmethod
    def empty(
        cls, numeric: int, categorical: int, targets: int, seed: int, capacity: int = 20 * MAX_CATEGORIES
    ):
        return cls(
            Moments(numeric),
            Sample(numeric + targets, seed=seed),
            [Counts(capacity) for _ in range(categorical)],
            [0] * categorical,
            [Moments(1) for _ in range(targets)],
            [Counts(MAX_CLASSES + 1) for _ in range(targets)],
            held_out=[{} for _ in range(targets)],
        )


def refuse_unstreamable(config: Config) -> None:
    """What the streamed path does not do yet, said before any pass begins."""
    pre, data = config.preprocessing, config.data
    for key, given in (
        (("preprocessing", "text"), pre.text is not None),
        (("preprocessing", "image"), pre.image.column is not None),
        (("data", "test_path"), data.test_path is not None),
        (("data", "comment"), data.comment is not None),
    ):
        if given:
            raise ConfigError(
                f"{config.where(*key)}: a streamed table (data.stream) does not take "
                f"{'.'.join(key)} yet; set data.stream: false to read the data whole"
            )


@dataclass
class Fitted:
    """What the statistics pass gives: the preprocessing, the layout, the columns, notes for the
    user and the train rows per class (classification)."""

    prep: Preprocessor
    layout: Layout
    cols: columns_mod.Columns
    notes: list[str]
    class_counts: dict = field(default_factory=dict)
    plan: Any = None  # a series (preprocessing.window): seriesstream.SeriesPlan


def fit(config: Config, stream: Stream, progress=None, shard: Shard | None = None, plan=None) -> Fitted:
    """The preprocessing fitted on the stream's train rows, and what else the pass learned.
    `shard` (multi_worker): this worker reads its own units, and the workers merge their summaries.
    `plan` (a series): seriesstream.plan's count of each series' rows, made first by the caller."""
    refuse_unstreamable(config)
    source = (
        str(stream.paths[0])
        if len(stream.paths) == 1
        else f"{stream.paths[0].parent} ({len(stream.paths)} files)"
    )
    first = stream.read(stream.units[0]) if stream.units else None
    if first is None or first.empty:
        raise DataError(f"{source}: the data holds no rows")
    require_columns(config, list(first.columns), source)
    cols = columns_mod.resolve(config, first, source)
    wanted = [c for c in stream.columns if c in {*cols.numeric, *cols.categorical, *_roles(config)}]
    stream.wanted = wanted
    tallies = _Tallies.empty(len(cols.numeric), len(cols.categorical), len(config.outputs), config.seed)
    if shard is None:
        layout = _pass(config, stream, cols, tallies, progress, plan)
    else:
        layout = _shard_pass(config, stream, cols, tallies, progress, shard)
    if not layout.total(hashsplit.TRAIN):
        raise DataError(f"{source}: no row fell in the train split; lower data.split.validation and test")
    if shard is None:  # each worker sees only its own rows' labels
        _refuse_unknown_labels(config, tallies)
    prep = _preprocessor(config, cols, tallies, source)
    notes = list(stream.notes)
    if shard is not None:
        mine = shard.read[shard.worker]
        notes.append(
            f"data: divided between {shard.workers} workers; worker {shard.worker} read {len(mine['units'])} "
            f"of {len(stream.units)} pieces ({mine['rows']:,} of {sum(layout.rows):,} rows), the workers' "
            "statistics are merged, and each worker trains and scores on its own pieces"
        )
    for column, counts in zip(cols.categorical, tallies.categories, strict=True):
        if counts.distinct() > MAX_CATEGORIES or counts.pruned:
            notes.append(
                f"{source}: categorical column {column!r} has more than {MAX_CATEGORIES} categories in "
                f"the train rows; the {MAX_CATEGORIES} most frequent are kept, the others encode as one "
                "'other' category (one-hot: all zeros)"
            )
    return Fitted(prep, layout, cols, notes, dict(tallies.classes[0].counts), plan)


def _roles(config: Config) -> set[str]:
    data = config.data
    return {c for c in (*data.targets, data.split.key, data.split.column) if c is not None}


def _pass(config: Config, stream: Stream, cols, tallies: _Tallies, progress, plan=None) -> Layout:
    """The pass in file order; `plan` (a series) gives each row's split and keeps each unit's history."""
    layout, global_row, in_file = Layout(), 0, {}
    if progress is not None:
        progress("statistics", 0, 0.0)
    for i, frame in stream.frames():
        unit = stream.units[i]
        layout.offsets.append(in_file.get(unit.path, 0))
        layout.first_global.append(global_row)
        layout.rows.append(len(frame))
        codes = None
        if plan is not None:
            codes = plan.codes(i)
            plan.keep(i, frame)
        layout.split_rows.append(_unit(config, frame, cols, tallies, i, global_row, str(unit.path), codes))
        in_file[unit.path] = in_file.get(unit.path, 0) + len(frame)
        global_row += len(frame)
        if progress is not None:
            progress("statistics", global_row, (i + 1) / len(stream.units))
    return layout


def _unit(
    config: Config, frame, cols, tallies: _Tallies, i: int, first_global: int, where: str, codes=None
) -> list[int]:
    """One unit of the statistics pass: its rows split (by `codes` where given), checked and (the
    train rows) tallied; returns its rows per split."""

    split = config.data.split
    if codes is None:
        codes = hashsplit.codes(
            frame, split.validation, split.test_fraction, split.key, first_global, split.column, where
        )
    columns_mod.check_rows(config, frame, cols, where, " of this part of the file")
    train = frame[codes == hashsplit.TRAIN]
    if len(train):
        _tally(config, train, cols, tallies, i)
    for output, held_out in zip(config.outputs, tallies.held_out, strict=True):
        if output.task == "classification" and len(held_out) <= MAX_CLASSES:
            labels = frame[output.column][codes != hashsplit.TRAIN].dropna()
            for line, label in labels.drop_duplicates().items():  # the index is the file's line
                held_out.setdefault(label, (where, line))
    return np.bincount(codes, minlength=3).tolist()


def _refuse_unknown_labels(config: Config, tallies: _Tallies) -> None:
    """A label of the validation or test rows that no train row has: scoring would fail after all
    the training, so it is refused now, naming where it first appears."""
    for output, classes, held_out in zip(config.outputs, tallies.classes, tallies.held_out, strict=True):
        known = classes.counts
        unknown = {label: at for label, at in held_out.items() if label not in known}
        if unknown:
            _unknown_label(output.column, known, unknown)


def _unknown_label(column: str, known: dict, unknown: dict) -> None:
    label, (where, line) = next(iter(unknown.items()))
    more = (
        f" (and {len(unknown) - 1} more: {', '.join(map(repr, list(unknown)[1:6]))})"
        if len(unknown) > 1
        else ""
    )
    raise DataError(
        f"{where}: line {line}: target {column!r} is {label!r}{more}, a label no train "
        f"row has (the train rows have {', '.join(map(repr, sorted(known, key=str)))}); a classifier "
        "cannot learn or score a class it never sees: fix the label, remove those rows, or make sure "
        "the train split holds every class"
    )


def shard_layout(stream: Stream) -> Layout:
    """The positions a worker knows before reading: for Parquet every unit's (from the metadata);
    for a text file only the first piece's, so the other pieces number their lines from their own
    first line (their rows are split by data.split.key or data.split.column, never by position)."""
    n = len(stream.units)
    layout = Layout([0] * n, [0] * n, [[0, 0, 0] for _ in range(n)], [0] * n)
    if stream.kind == "Parquet":
        layout.offsets, layout.first_global = shards.parquet_positions(stream)
    else:
        layout.offsets = [0 if u.start == 0 or not stream.header else -1 for u in stream.units]
    return layout


def piece_name(stream: Stream, i: int) -> str:
    """The file of unit i, for messages; a text file's later pieces say where they begin."""
    unit = stream.units[i]
    if stream.kind == "Parquet" or unit.start == 0:
        return str(unit.path)
    return f"{unit.path} (the part from byte {unit.start}, lines counted from there)"


def _shard_pass(config: Config, stream: Stream, cols, tallies: _Tallies, progress, shard: Shard) -> Layout:
    """The statistics pass over this worker's units, then every worker's summaries merged (in
    worker order, so every worker fits the same state) and every unit's rows per split learned."""
    layout, mine, done, error = shard_layout(stream), shard.units(), 0, None
    if progress is not None:
        progress("statistics", 0, 0.0)
    try:
        for k, (i, frame) in enumerate(stream.frames(mine, layout.offsets)):
            layout.rows[i] = len(frame)
            where = piece_name(stream, i)
            layout.split_rows[i] = _unit(config, frame, cols, tallies, i, layout.first_global[i], where)
            done += len(frame)
            if progress is not None:
                progress("statistics", done, (k + 1) / max(len(mine), 1))
    except DlcliError as exc:
        error = exc
    shard.agree_on_errors(error)
    meta = {
        "units": {str(i): [layout.rows[i], layout.split_rows[i]] for i in mine},
        "categories": [c.pairs() for c in tallies.categories],
        "classes": [c.pairs() for c in tallies.classes],
        "missing": tallies.missing,
        "train_rows": tallies.train_rows,
        "read": sorted(stream.reads),  # the units this worker's pass read
    }
    arrays = {
        **tallies.moments.arrays("moments"),
        **{k: v for j, m in enumerate(tallies.target_moments) for k, v in m.arrays(f"target.{j}").items()},
        "sample.keys": tallies.sample.keys,
        "sample.rows": tallies.sample.rows,
    }
    everyone = shard.exchange_arrays(meta, arrays)
    _merge(tallies, layout, everyone, len(tallies.moments.n))
    shard.read = [
        {"worker": w, "units": m["read"], "rows": sum(layout.rows[i] for i in m["read"])}
        for w, (m, _) in enumerate(everyone)
    ]
    return layout


def _merge(tallies: _Tallies, layout: Layout, everyone: list, width: int) -> None:
    """Every worker's summaries (in worker order) into `tallies`, every unit's rows into `layout`."""
    targets = len(tallies.target_moments)
    capacity = tallies.categories[0].capacity if tallies.categories else 20 * MAX_CATEGORIES
    fresh = _Tallies.empty(width, len(tallies.categories), targets, tallies.sample.seed, capacity)
    fresh.held_out = tallies.held_out
    for meta, arrays in everyone:
        for i, (rows, split_rows) in meta["units"].items():
            layout.rows[int(i)], layout.split_rows[int(i)] = rows, split_rows
        fresh.moments.fold(Moments.of(arrays, "moments"))
        for j, moments in enumerate(fresh.target_moments):
            moments.fold(Moments.of(arrays, f"target.{j}"))
        fresh.sample.fold(arrays["sample.keys"], arrays["sample.rows"].reshape(-1, width + targets))
        for counts, theirs in zip(fresh.categories, meta["categories"], strict=True):
            counts.fold(theirs)
        for classes, theirs in zip(fresh.classes, meta["classes"], strict=True):
            classes.fold(theirs)
        fresh.missing = [a + b for a, b in zip(fresh.missing, meta["missing"], strict=True)]
        fresh.train_rows += meta["train_rows"]
    tallies.__dict__.update(fresh.__dict__)


def _tally(config: Config, train: pd.DataFrame, cols, tallies: _Tallies, chunk: int) -> None:

    values = train[cols.numeric].to_numpy(dtype="float64") if cols.numeric else np.empty((len(train), 0))
    if config.preprocessing.numeric.non_finite == "missing":
        values[np.isinf(values)] = np.nan
    tallies.moments.add(values)
    ys = []
    for j, output in enumerate(config.outputs):
        target = train[output.column]
        if output.task == "regression":
            ys.append(target.to_numpy(dtype="float64"))
            tallies.target_moments[j].add(ys[-1])
            continue
        ys.append(np.zeros(len(train)))
        tallies.classes[j].add(target)
        if tallies.classes[j].distinct() > MAX_CLASSES:
            raise DataError(
                f"target {output.column!r} has more than {MAX_CLASSES} classes in the train rows; is it a "
                "number to predict (use a regression loss such as mse)?"
            )
    tallies.sample.add(np.column_stack([values, *ys]), chunk)
    for j, column in enumerate(cols.categorical):
        text = train[column].astype("object").where(train[column].notna(), None)
        tallies.missing[j] += int(text.isna().sum())
        tallies.categories[j].add(text.dropna().astype(str))
    tallies.train_rows += len(train)


def _preprocessor(config: Config, cols, tallies: _Tallies, source: str) -> Preprocessor:

    pre = config.preprocessing
    numeric = NumericTransformer(
        list(cols.numeric),
        pre.numeric.impute,
        pre.numeric.fill_value,
        pre.numeric.scale,
        pre.numeric.non_finite,
    )
    numeric.fit_summary(tallies.moments, tallies.sample, tallies.train_rows, source)
    categorical = CategoricalEncoder(
        list(cols.categorical), pre.categorical.impute, pre.categorical.fill_value, pre.categorical.encode
    )
    categorical.fit_counts([c.counts for c in tallies.categories], tallies.missing, MAX_CATEGORIES)
    targets, first = [], len(cols.numeric)  # each target's sample values follow the numeric columns'
    for j, output in enumerate(config.outputs):
        target = TargetEncoder(output.column, output.task, pre.target.scale)
        sampled = tallies.sample.rows[:, first + j : first + j + 1]
        targets.append(
            target.fit_summary(list(tallies.classes[j].counts), tallies.target_moments[j], sampled)
        )
    features = preprocessing.of_columns(config, targets[0], numeric, categorical, output=config.outputs[0])
    return preprocessing.per_output(config, features, targets)


def class_weights(prep: Preprocessor, config: Config, counts: dict) -> dict[str, float]:
    """train.class_weight per class label from the pass's class counts (`balanced` as
    scikit-learn computes it: rows / (classes present * rows of the class))."""
    setting, where = config.train.class_weight, config.where("train", "class_weight")
    if setting != "balanced":
        return prep.class_weights(setting, None, where)
    classes = prep.target_encoder.classes_
    rows, present = sum(counts.values()), [c for c in classes if counts.get(c)]
    return {str(c): round(rows / (len(present) * counts[c]), 6) if counts.get(c) else 1.0 for c in classes}
