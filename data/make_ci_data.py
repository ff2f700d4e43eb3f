"""Make the tiny data files that configs/ci/ train on. Deterministic: rerunning gives identical files.

python data/make_ci_data.py
"""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

HERE = Path(__file__).parent


def regression(rng: np.random.Generator, n: int = 240) -> pd.DataFrame:
    """Price-like target from two numbers and a category; some values missing."""
    area = rng.uniform(30, 200, n).round(1)
    rooms = rng.integers(1, 7, n).astype(float)
    city = rng.choice(["north", "south", "east"], n)
    bonus = pd.Series(city).map({"north": 50_000, "south": 0, "east": 20_000}).to_numpy()
    price = 2_000 * area + 15_000 * rooms + bonus + rng.normal(0, 10_000, n)
    rooms[rng.choice(n, 12, replace=False)] = np.nan
    return pd.DataFrame({"area": area, "rooms": rooms, "city": city, "price": price.round(0)})


def binary(rng: np.random.Generator, n: int = 240) -> pd.DataFrame:
    """String labels 'yes'/'no' from two features."""
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "blue"], n)
    logit = 2 * x1 - 1.5 * x2 + (colour == "red")
    label = np.where(logit + rng.normal(0, 0.5, n) > 0.5, "yes", "no")
    return pd.DataFrame({"x1": x1.round(4), "x2": x2.round(4), "colour": colour, "label": label})


def series(rng: np.random.Generator, n: int = 300) -> pd.DataFrame:
    """A seasonal daily series with noise."""
    days = pd.date_range("2020-01-01", periods=n, freq="D")
    value = 10 + 5 * np.sin(np.arange(n) * 2 * np.pi / 30) + rng.normal(0, 0.5, n)
    return pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "value": value.round(3)})


def sensors(rng: np.random.Generator, n: int = 150) -> pd.DataFrame:
    """Three daily series in one file, as a log holds them: rows by date, the sensors interleaved,
    each at its own level (0, 50, 100) and period, and one day missing from sensor b."""
    days = pd.date_range("2021-03-01", periods=n, freq="D").strftime("%Y-%m-%d")
    parts = []
    for name, level, period in (("a", 0.0, 20), ("b", 50.0, 30), ("c", 100.0, 15)):
        value = level + 5 * np.sin(np.arange(n) * 2 * np.pi / period) + rng.normal(0, 0.3, n)
        parts.append(pd.DataFrame({"date": days, "sensor": name, "value": value.round(3)}))
    frame = pd.concat(parts).sort_values(["date", "sensor"], kind="stable")
    gap = (frame["sensor"] == "b") & (frame["date"] == days[70])
    return frame[~gap]


def text(rng: np.random.Generator, n: int = 240) -> pd.DataFrame:
    """Short messages, spam or ham by their words, a few with a stray double quote (as the SMS Spam
    Collection has); written as a headerless TSV."""
    spam = ["free", "win", "prize", "cash", "claim", "urgent", "offer", "txt"]
    ham = ["lunch", "later", "home", "thanks", "meeting", "tonight", "call", "love"]
    filler = ["the", "a", "you", "now", "to", "is", "my", "ok", "see", "at"]
    label = rng.choice(["ham", "spam"], n, p=[0.7, 0.3])
    messages = []
    for y in label:
        own = spam if y == "spam" else ham
        words = [*rng.choice(own, rng.integers(2, 4)), *rng.choice(filler, rng.integers(2, 6))]
        message = " ".join(rng.permutation(words))
        messages.append(message + ' "' if rng.random() < 0.05 else message.capitalize() + "!")
    return pd.DataFrame({"label": label, "message": messages})


def image_folder(rng: np.random.Generator, folder: Path, per_class: int = 24) -> None:
    """Photos in class folders, as folders in the wild hold them: mostly-red or mostly-blue noise of
    varied sizes, as PNG, JPEG (.jpg and .jpeg) and one GIF, one name with a space."""
    from PIL import Image

    for label, channel in (("red", 0), ("blue", 2)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            height, width = rng.integers(20, 48, 2)
            pixels = rng.integers(0, 120, (height, width, 3))
            pixels[..., channel] += 120
            image = Image.fromarray(pixels.astype("uint8"))
            suffix = [".png", ".jpg", ".jpeg", ".png"][i % 4]
            name = f"{label} {i}" if i == 1 else f"{label}_{i:02d}"
            if i == 2:
                suffix = ".gif"
            image.save(folder / label / f"{name}{suffix}")


def photo_table(rng: np.random.Generator, folder: Path) -> pd.DataFrame:
    """The photos of `folder` as rows of a table beside a number: each row's colour is seen only in
    its photo, and its price depends on the colour and the weight, so a model needs both inputs."""
    paths = sorted(p for p in folder.rglob("*.*") if p.suffix in (".png", ".jpg", ".jpeg", ".gif"))
    colour = np.array([p.parent.name for p in paths])
    weight = rng.uniform(1, 10, len(paths)).round(2)
    price = 10 * weight + np.where(colour == "red", 40, 0) + rng.normal(0, 1, len(paths))
    files = [str(p.relative_to(folder.parent)) for p in paths]
    return pd.DataFrame({"photo": files, "weight": weight, "colour": colour, "price": price.round(2)})


def images() -> dict[str, np.ndarray]:
    """scikit-learn's 8x8 digits as uint8 arrays in the Keras NPZ layout."""
    digits = load_digits()
    x, y = digits.images.astype("uint8"), digits.target.astype("uint8")
    return {"x_train": x[:600], "y_train": y[:600], "x_test": x[600:800], "y_test": y[600:800]}


def sklearn_tables() -> None:
    """scikit-learn's iris, wine and breast cancer tables as CSV files (configs/written/ reads them)."""
    import sklearn.datasets

    for name in ("iris", "wine", "breast_cancer"):
        getattr(sklearn.datasets, f"load_{name}")(as_frame=True).frame.to_csv(
            HERE / f"{name}.csv", index=False
        )


def main() -> None:
    rng = np.random.default_rng(0)
    regression(rng).to_csv(HERE / "tiny_regression.csv", index=False)
    binary(rng).to_csv(HERE / "tiny_binary.csv", index=False)
    series(rng).to_csv(HERE / "tiny_series.csv", index=False)
    text(rng).to_csv(HERE / "tiny_text.tsv", sep="\t", header=False, index=False, quoting=csv.QUOTE_NONE)
    image_folder(rng, HERE / "tiny_images")
    np.savez_compressed(HERE / "tiny_digits.npz", **images())
    sensors(np.random.default_rng(1)).to_csv(HERE / "tiny_sensors.csv", index=False)
    photo_table(np.random.default_rng(2), HERE / "tiny_images").to_csv(HERE / "tiny_photos.csv", index=False)
    sklearn_tables()


if __name__ == "__main__":
    main()
