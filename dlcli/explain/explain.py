"""`dlcli explain RUN [--data PATH]`: what a finished run's predictions rest on.

- **Columns**: each raw input column's permutation importance, as scikit-learn's
  `permutation_importance` defines it: the drop in the run's headline metric (accuracy, else r2) when
  that column's values are shuffled between the rows, `repeats` times, mean and spread. A text,
  category or image-path column is shuffled as whole values. On the test split (a streamed run's first
  `sample` test rows, said in the output) or a labelled file.
- **Words** (a model with a text column): for each of the first `rows` rows, the words whose removal
  moves the predicted class's log-odds most (each word left out of its text in turn; positive: the
  word speaks for the prediction).
- **Pixels** (a model of images only): for each of the first `rows` images an occlusion map, the drop
  in the predicted class's log-odds when a square of the image is greyed out, drawn over it.

Log-odds rather than probabilities: a confident model's probability barely moves (0.99995), its
log-odds do; they are computed in float64 from the output layer's sum (pictures.log_scorer).

Everything goes to RUN/explain/ (explain.json and the pictures), which each explain replaces.

    >>> found = explain("runs/housing/latest")
    >>> found["columns"][0]["column"], found["columns"][0]["importance"]
    ('median_income', 0.41)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlcli.artifacts import run_inputs
from dlcli.datasets import pipeline, scoring
from dlcli.evaluation import with_tensorflow
from dlcli.explain import pictures
from dlcli.io import hashsplit
from dlcli.runs import runs, scores
from dlcli.utils import files
from dlcli.utils.errors import DataError

#: The metric an importance is the drop of: the first of these the run's metrics have (all go up).
HEADLINE = ("accuracy", "r2")
#: Rows a streamed run is explained on at most (its test rows, read from the start).
SAMPLE = 2000


def explain(
    run: str | Path,
    data_path: Path | None = None,
    repeats: int = 5,
    rows: int = 4,
    runs_dir: Path = runs.DEFAULT_RUNS_DIR,
    device: str | None = None,
    seed: int = 0,
    sample: int = SAMPLE,
) -> dict:
    """The explanation (explain.json's content), written to RUN/explain/."""
    loaded_run = with_tensorflow.load_run(run, runs_dir, device)
    prep = loaded_run.prep
    found: dict[str, Any] = {"run": str(loaded_run.run_dir), "notes": []}
    part, history, source = _rows(loaded_run, data_path, sample, found["notes"])
    found["source"] = source
    folder = loaded_run.run_dir / "explain"
    folder.mkdir(exist_ok=True)
    if prep.arrays or (prep.reads_files and not prep.input_columns[1:]):
        found["maps"] = pictures.occlusion_maps(loaded_run, part, rows, folder)
    elif _labelled(prep, part):
        found.update(_importance(loaded_run, part, history, source, repeats, np.random.default_rng(seed)))
    else:
        found["notes"].append(
            f"{source} has no {', '.join(_targets(prep))} column: no importance without labels"
        )
    if getattr(prep, "text", None) is not None and not prep.arrays:
        if prep.outputs is None:
            found["words"] = _words(loaded_run, part, rows)
        else:
            found["notes"].append("several targets: no word effects (given for models of one target)")
    files.write_json(folder / "explain.json", found)
    return found


def _labelled(prep, part) -> bool:
    return isinstance(part, pd.DataFrame) and all(c in part.columns for c in _targets(prep))


def _targets(prep) -> list[str]:
    return list(prep.outputs) if prep.outputs is not None else [prep.target_encoder.column]


def _rows(loaded_run, data_path: Path | None, sample: int, notes: list[str]):
    """The rows to explain on: `(part, history, source)`; history: the rows before a series' test split."""
    prep, config = loaded_run.prep, loaded_run.need_config()
    if data_path is not None:
        part = run_inputs.read_input(prep, Path(data_path), loaded_run.config, labelled=False)
        return part, None, str(data_path)
    loaded = with_tensorflow.trained_data(loaded_run, "explain")
    if loaded.stream is not None:
        part = _streamed_test(loaded.stream, config, sample)
        notes.append(f"a streamed run: explained on the first {len(part)} rows of its test split")
        return part, None, f"{loaded.source} (test split, {len(part)} rows)"
    if "test" not in loaded.splits:
        raise DataError("the run has no test split (data.split.test is 0); pass --data FILE")
    history = None
    if prep.windowed:
        history = pd.concat([loaded.splits[s] for s in ("train", "validation") if s in loaded.splits])
    return loaded.splits["test"], history, f"{loaded.source} (test split)"


def _streamed_test(stream, config, sample: int) -> pd.DataFrame:
    """The first `sample` rows of a stream's test split, unit by unit."""
    kept, have, seen = [], 0, 0
    split = config.data.split
    for _, frame in stream.frames():  # in file order: a row's position among all rows, as training's
        codes = hashsplit.codes(frame, split.validation, split.test_fraction, split.key, seen, split.column)
        seen += len(frame)
        kept.append(frame[codes == hashsplit.TEST].head(sample - have))
        have += len(kept[-1])
        if have >= sample:
            break
    return pd.concat(kept)


def _score(loaded_run, part, history, source: str) -> tuple[str, float]:
    """The headline metric of `part` (the first output's with several targets: `price.r2`)."""
    prep, config = loaded_run.prep, loaded_run.need_config()
    ex = scoring.examples(prep, prep.match_labels(part, source), history, source)
    metrics = scoring.score(prep, config, loaded_run.model, ex)[0]
    output, values = next(iter(scores.by_output(metrics).items()))
    name = next(m for m in HEADLINE if m in values)
    return (f"{output}.{name}" if output else name), float(values[name])


def _importance(loaded_run, part: pd.DataFrame, history, source: str, repeats: int, rng) -> dict:
    """Each input column's drop in the headline metric when shuffled, `repeats` times."""
    metric, baseline = _score(loaded_run, part, history, source)
    columns = []
    for column in loaded_run.prep.input_columns:
        drops = []
        for _ in range(repeats):
            shuffled = part.copy()
            shuffled[column] = rng.permutation(part[column].to_numpy())
            drops.append(baseline - _score(loaded_run, shuffled, history, source)[1])
        spread = float(np.std(drops, ddof=1)) if repeats > 1 else 0.0
        columns.append(
            {"column": column, "importance": float(np.mean(drops)), "spread": spread, "drops": drops}
        )
    columns.sort(key=lambda c: -c["importance"])
    return {"metric": metric, "baseline": baseline, "rows": len(part), "repeats": repeats, "columns": columns}


def _words(loaded_run, part: pd.DataFrame, rows: int, top: int = 5) -> list[dict]:
    """For each of the first `rows` rows, the words whose removal moves the predicted class most."""
    prep = loaded_run.prep
    column = prep.text.columns[0]
    scorer = pictures.log_scorer(loaded_run.model, prep)
    out = []
    for _, row in part.head(rows).iterrows():
        text = str(row[column])
        words = list(dict.fromkeys(prep.text.words(text)))  # as the model's vectorizer splits it
        variants = [text] + [_without(prep.text, text, w) for w in words]
        frame = pd.DataFrame([row] * len(variants)).reset_index(drop=True)
        frame[column] = variants
        logs = _log_probabilities(loaded_run, scorer, frame)
        label = int(np.argmax(logs[0]))
        odds = pictures.log_odds(logs, label)
        moved = odds[0] - odds[1:]
        order = np.argsort(-np.abs(moved))[:top]
        out.append(
            {
                "text": text,
                "prediction": str(prep.target_encoder.classes_[label]) if prep.target_encoder else label,
                "probability": float(np.exp(logs[0, label])),
                "words": [{"word": words[i], "effect": float(moved[i])} for i in order],
            }
        )
    return out


def _without(vectorizer, text: str, word: str) -> str:
    """`text` with every piece that the vectorizer reads as `word` alone left out."""
    kept = [piece for piece in text.split() if vectorizer.words(piece) != [word]]
    return " ".join(kept) if kept else "."


def _log_probabilities(loaded_run, scorer, frame: pd.DataFrame) -> np.ndarray:
    """Each class's log-probability for the rows of `frame` (pictures.log_scorer)."""
    prep, (head, to_log) = loaded_run.prep, scorer
    ex = scoring.examples(prep, frame, labelled=False)
    return to_log(pipeline.forward(head, ex.dataset(prep, loaded_run.forward_batch)))
