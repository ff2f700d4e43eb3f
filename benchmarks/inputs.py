"""dlcli's text and image-file inputs against the plain Keras scripts that do the same, interleaved.

    DLCLI_DATA_DIR=../shared/data python benchmarks/inputs.py [--rounds 3]

Images: the hymenoptera training folder (245 photos of every size, one GIF), decoded, resized to
224x224 and augmented (flip, rotation, zoom) in batches of 32: images per second of dlcli's
pipeline (benchmarks/scripts/images_dlcli.py) against keras.utils.image_dataset_from_directory
(images_keras_utils.py), each a fresh process, median of the passes after the first, median over
rounds; peak RSS of each. Then dlcli's pipeline over the folder and over a folder holding every
photo four times (links), for the peak RSS as the number of images grows.

Text: `dlcli train configs/sms_spam.yaml` (TextVectorization inside the model) for 8 epochs against
a plain script with TextVectorization in its tf.data pipeline (sms_textvectorization.py): the
median steady epoch (first excluded), the whole training (every epoch, and dlcli's one vectorizing
pass of dlcli/models/sparse.py) and test accuracy. Writes its block of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

from compare import ROOT, SCRIPTS, machine, run, script_arguments, steady, write_block

START, END = "<!-- inputs.py:start -->", "<!-- inputs.py:end -->"
EPOCHS = 8
PASSES = 4


def image_side(script: str, folder: Path, work: Path) -> dict:
    result = work / "images.json"
    wall, rss = run([sys.executable, str(SCRIPTS / script), str(folder), str(result), str(PASSES)])
    out = json.loads(result.read_text())
    return {"rate": statistics.median(out["images_per_s"]), "images": out["images"], "rss_mb": rss}


def text_script(data: Path, work: Path) -> dict:
    result = work / "text.json"
    script = str(SCRIPTS / "sms_textvectorization.py")
    wall, rss = run([sys.executable, script, str(data / "sms-spam.tsv"), str(result), str(EPOCHS)])
    out = json.loads(result.read_text())
    total = sum(out["epoch_s"])
    return {"epoch_s": steady(out["epoch_s"]), "total_s": total, "metric": out["test_metric"], "rss_mb": rss}


def text_dlcli(data: Path, work: Path) -> dict:
    runs = work / "runs"
    command = [sys.executable, "-m", "dlcli", "train", str(ROOT / "configs" / "sms_spam.yaml"), "-q"]
    command += ["--run-dir", str(runs), "-o", f"train.epochs={EPOCHS}", "-o", "train.early_stopping=null"]
    wall, rss = run(command, env={"DLCLI_DATA_DIR": str(data)})
    (run_dir,) = [p for p in runs.glob("*/2*") if p.is_dir()]
    timings = json.loads((run_dir / "run.json").read_text())["timings"]
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    total = sum(timings["epoch_s"]) + timings.get("text_vectors_s", 0)  # with the one vectorizing pass
    return {
        "epoch_s": steady(timings["epoch_s"]),
        "total_s": total,
        "metric": test["accuracy"],
        "rss_mb": rss,
    }


def repeated(folder: Path, work: Path, times: int) -> Path:
    """A folder of class folders holding every image `times` times (symbolic links)."""
    out = work / f"x{times}"
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        (out / class_dir.name).mkdir(parents=True)
        for image in sorted(p for p in class_dir.iterdir() if p.is_file()):
            for k in range(times):
                (out / class_dir.name / f"{k}_{image.name}").symlink_to(image)
    return out


def main() -> None:
    args, data = script_arguments(__doc__, rounds=3)
    folder = data / "hymenoptera" / "train"
    if not folder.is_dir() or not (data / "sms-spam.tsv").is_file():
        sys.exit(f"{data}: no hymenoptera/ or sms-spam.tsv; set DLCLI_DATA_DIR to the shared data folder")
    sides = {"keras": [], "dlcli": [], "text_script": [], "text_dlcli": [], "x1": [], "x4": []}
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            sides["keras"].append(image_side("images_keras_utils.py", folder, work))
            sides["dlcli"].append(image_side("images_dlcli.py", folder, work))
            sides["text_script"].append(text_script(data, work))
            sides["text_dlcli"].append(text_dlcli(data, work))
            four = repeated(folder, work, 4)
            sides["x1"].append(image_side("images_dlcli.py", folder, work))
            sides["x4"].append(image_side("images_dlcli.py", four, work))
        print(f"round {round_ + 1}: " + json.dumps({k: v[-1] for k, v in sides.items()}), flush=True)
    block = render(sides, args.rounds)
    write_block(args.output, START, END, block)


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def render(sides: dict, rounds: int) -> str:
    keras_rate, dlcli_rate = _median(sides["keras"], "rate"), _median(sides["dlcli"], "rate")
    script_epoch = _median(sides["text_script"], "epoch_s")
    dlcli_epoch = _median(sides["text_dlcli"], "epoch_s")
    script_total, dlcli_total = (
        _median(sides["text_script"], "total_s"),
        _median(sides["text_dlcli"], "total_s"),
    )
    x1, x4 = _median(sides["x1"], "rss_mb"), _median(sides["x4"], "rss_mb")
    n1, n4 = sides["x1"][0]["images"], sides["x4"][0]["images"]
    lines = [
        START,
        "## Text and image-file inputs (issue 16)",
        "",
        f"Measured {date.today().isoformat()} by `benchmarks/inputs.py --rounds {rounds}` on: {machine()}.",
        "Each side a fresh process, interleaved per round; medians over rounds.",
        "",
        "| work | side | speed | ratio | metric | peak RSS (MB) |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| hymenoptera/train, decode + resize 224 + flip/rotation/zoom, batch 32 | "
        f"keras.utils.image_dataset_from_directory | {keras_rate:.1f} images/s | 1 | | "
        f"{_median(sides['keras'], 'rss_mb'):.0f} |",
        f"| | dlcli's pipeline | {dlcli_rate:.1f} images/s | {dlcli_rate / keras_rate:.3f} | | "
        f"{_median(sides['dlcli'], 'rss_mb'):.0f} |",
        f"| sms-spam.tsv, TF-IDF of 1-2-grams, Dense 32, batch 64, {EPOCHS} epochs | plain Keras, "
        f"TextVectorization in tf.data | {script_epoch:.3f} s/epoch | 1 | test accuracy "
        f"{_median(sides['text_script'], 'metric'):.4f} | {_median(sides['text_script'], 'rss_mb'):.0f} |",
        f"| | dlcli (configs/sms_spam.yaml: sparse vectors, vectorizer in the saved model) | "
        f"{dlcli_epoch:.3f} s/epoch | {dlcli_epoch / script_epoch:.3f} | test accuracy "
        f"{_median(sides['text_dlcli'], 'metric'):.4f} | {_median(sides['text_dlcli'], 'rss_mb'):.0f} |",
        f"| same, all {EPOCHS} epochs (dlcli: with its one vectorizing pass) | plain Keras | "
        f"{script_total:.2f} s | 1 | | |",
        f"| | dlcli | {dlcli_total:.2f} s | {dlcli_total / script_total:.3f} | | |",
        "",
        f"Memory as the number of images grows (dlcli's pipeline): {n1} images {x1:.0f} MB, {n4} images "
        f"{x4:.0f} MB peak RSS (ratio {x4 / x1:.3f}).",
        END,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
