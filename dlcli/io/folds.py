"""Cross-validation folds (train.folds, train.fold) of the rows outside the test split.

Classes keep their proportions in every fold (scikit-learn's StratifiedKFold, else KFold, shuffled
with the config's seed); a series is never shuffled: its rows are cut into folds + 1 blocks in time
order and fold i trains on the first i blocks and validates on the next, so no fold validates on rows
older than its training rows; with data.split.key each key's rows stay together (a fold is a range of
the key's hash, as the test split is: `hashsplit.fold_of`).

    >>> train, validation = split(config, rest, labels)   # positions, for config.train.fold
"""

from __future__ import annotations

import numpy as np

from dlcli.config.config import Config
from dlcli.utils.errors import DataError


def split(config: Config, rest: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) of fold `train.fold` among the positions `rest` (the rows not in test)."""
    k, i = config.train.folds, config.train.fold
    if len(rest) < k + 1:
        raise DataError(
            f"{config.where('train', 'folds')}: {k} folds need more rows than the {len(rest)} outside "
            "the test split: use fewer folds"
        )
    if not config.shuffles:  # forward chaining: the past trains, the next block validates
        blocks = np.array_split(rest, k + 1)
        return np.concatenate(blocks[:i]), blocks[i]
    from sklearn.model_selection import KFold, StratifiedKFold  # splitting only: predict never loads it

    if labels is not None:
        values, counts = np.unique(labels.astype(str), return_counts=True)
        if counts.min() < k:
            raise DataError(
                f"{config.where('train', 'folds')}: {k} stratified folds need at least {k} rows of "
                f"every class outside the test split; class {str(values[counts.argmin()])!r} has "
                f"{counts.min()}: use fewer folds"
            )
        splitter = StratifiedKFold(k, shuffle=True, random_state=config.seed)
    else:
        splitter = KFold(k, shuffle=True, random_state=config.seed)
    train, validation = list(splitter.split(rest, labels))[i - 1]
    return rest[train], rest[validation]
