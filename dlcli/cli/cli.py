"""The `dlcli` command: parse arguments, call `dlcli.api`, print (through dlcli.cli.console, the other
module importing rich). The only module importing typer.

Importing this module must not import TensorFlow, Keras, pandas or scikit-learn: `dlcli --help` and
`dlcli validate` start instantly (tests/test_startup.py holds us to it).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from dlcli.cli import console
from dlcli.config.templates import TEMPLATES
from dlcli.runs.runs import DEFAULT_RUNS_DIR
from dlcli.utils.errors import DlcliError, RunError

app = typer.Typer(
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: typer 0.29's rich panels show every flag as `<bool>`
    help="Train, evaluate, predict, export and serve Keras models described by YAML configs.",
)
config_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Inspect configs.")
app.add_typer(config_app, name="config")
out, err = console.out, console.err

Overrides = Annotated[
    list[str] | None,
    typer.Option(  # noqa: UP045 - typer needs Optional
        "-o",
        "--override",
        help="key.path=value (repeatable); the value is read as YAML.",
        metavar="KEY=VALUE",
    ),
]
RunsDir = Annotated[
    Path, typer.Option("--run-dir", help="Folder that holds the runs (for 'latest').", metavar="DIR")
]
Device = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional
    typer.Option(
        "--device",
        help="cpu, gpu or gpu:N (default: every GPU TensorFlow finds, else the CPU).",
        metavar="DEVICE",
    ),
]


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        print(f"dlcli {metadata.version('dlcli')}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks (also after the command, or DLCLI_DEBUG=1).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    if debug:
        os.environ["DLCLI_DEBUG"] = "1"


def _import_tensorflow() -> None:
    """TensorFlow imported, its start-up chatter held back, before the modules that use it are."""
    from dlcli.devices.compute import import_tensorflow

    import_tensorflow()


@app.command()
def train(
    config: Annotated[
        Optional[Path],  # noqa: UP045 - typer needs Optional
        typer.Argument(help="The YAML config (optional with --resume).", metavar="CONFIG"),
    ] = None,
    override: Overrides = None,
    runs_dir: Annotated[
        Path,
        typer.Option("--run-dir", help="Folder that holds the runs: DIR/<name>/<timestamp>.", metavar="DIR"),
    ] = DEFAULT_RUNS_DIR,
    resume: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--resume", help="Continue this run from its last completed epoch.", metavar="RUN"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary.")] = False,
    device: Device = None,
    target: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--target", help="With a data file for CONFIG: the column to predict.", metavar="COL"),
    ] = None,
    folds: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--folds", help="Cross-validate: K runs, each validating on one K-th.", metavar="K"),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", help="With --folds: folds trained at once.", metavar="N")
    ] = 1,
    fold_worker: Annotated[bool, typer.Option("--fold-worker", hidden=True)] = False,
) -> None:
    """Validate, load data, train, evaluate on the test split and write the run directory.

    CONFIG may be a data file (or folder of class folders) with --target: the config `dlcli init
    --data` would write is trained, and kept in the run directory as init.yaml. With --folds K (or
    train.folds), one run per fold in runs/NAME/cv-ID/, and each metric's mean and spread."""
    overrides = [*(override or []), *([f"train.folds={folds}"] if folds is not None else [])]
    written = _written_from_data(config, target, overrides)  # before TensorFlow: mistakes are instant
    _import_tensorflow()
    from dlcli import api
    from dlcli.config.config import load_config

    listener = None if quiet else console.Progress()
    if resume is not None:
        result = api.resume(resume, overrides, config, runs_dir, listener, device=device)
    elif config is None:
        raise typer.BadParameter("give a CONFIG to train, or --resume RUN to continue a run")
    else:
        loaded = written if written is not None else load_config(config, overrides)
        if listener is not None:
            listener.batch_size = loaded.train.batch_size
        if loaded.train.folds is not None and loaded.train.fold is None:
            again = ["train", str(config), *_repeated(overrides, runs_dir, target)]
            return _cross_validate(loaded, runs_dir, listener, jobs, again, fold_worker, device)
        result = api.train(loaded, runs_dir, listener, device=device)
    _print_result(result, listener is None)


def _repeated(overrides: list[str], runs_dir: Path, target: str | None) -> list[str]:
    """The options that repeat this `dlcli train` in another process (--jobs)."""
    target_option = ["--target", target] if target is not None else []
    return [*(a for o in overrides for a in ("-o", o)), "--run-dir", str(runs_dir), *target_option]


def _cross_validate(
    config, runs_dir: Path, listener, jobs: int, again: list[str], worker: bool, device
) -> None:
    from dlcli.crossval.crossval import cross_validate

    def say(text: str) -> None:
        err.print(escape(text), highlight=False)

    done = cross_validate(config, runs_dir, listener, jobs, again, worker, say, device)
    if worker:
        return
    if not done.complete:
        raise RunError(
            f"{done.folder}: {len(done.folds)} of {config.train.folds} folds completed (another process "
            "may be training the rest); run the same command again to continue"
        )
    out.print(f"[bold green]done[/] {config.train.folds} folds → {done.folder}", highlight=False)
    out.print(console.spread_table(done.summary["splits"]))


def _print_result(result, notes: bool) -> None:
    if notes:  # with progress on, the notes came before the first epoch
        console.print_notes(result.notes)
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if not result.chief:
        where = result.placement
        out.print(
            f"[bold green]done[/] {result.epochs} epochs as worker {where['worker']} of {where['workers']}; "
            f"the chief (worker 0) wrote the run directory. Weights sha256 {where['weights_sha256']} "
            "(the chief's run.json has its own under distribution)",
            highlight=False,
        )
        return
    best = f", best epoch {result.best_epoch}" if result.best_epoch else ""
    out.print(f"[bold green]done[/] {result.epochs} epochs{best} → {result.run_dir}", highlight=False)
    out.print(console.metrics_table(result.metrics))
    console.print_per_class(result.metrics)
    console.print_light_model(result.light_model)


def _written_from_data(config: Path | None, target: str | None, overrides: list[str]):
    """The config written for a data file or folder given where a config goes (`dlcli train
    titanic.csv --target Survived`), else None."""
    if config is not None and (
        config.is_dir() or (config.suffix.lower() not in (".yaml", ".yml") and config.is_file())
    ):
        from dlcli.autoconfig.draft import for_training

        return for_training(config, target, overrides)
    if target is not None:
        raise typer.BadParameter(
            "--target goes with a data file for CONFIG; a config names it in data.target"
        )
    return None


@app.command()
def evaluate(
    run: Annotated[str, typer.Argument(help="Run directory, 'latest' or NAME/latest.", metavar="RUN")],
    data: Annotated[Optional[Path], typer.Option("--data", help="Another labelled file.")] = None,  # noqa: UP045
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    device: Device = None,
) -> None:
    """Metrics of a finished run on its test split, or on another labelled file."""
    from dlcli.evaluation import inference

    warnings: list[str] = []
    rows = console.Rows()
    try:
        metrics = inference.tensorflow_path().evaluate(run, data, runs_dir, device, warnings, rows)
    finally:
        rows.close()
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if as_json:
        print(json.dumps(metrics, indent=2))
    else:
        split = {"test" if data is None else str(data): metrics}
        out.print(console.metrics_table(split))
        console.print_per_class(split)


@app.command()
def explain(
    run: Annotated[str, typer.Argument(help="Run directory, 'latest' or NAME/latest.", metavar="RUN")],
    data: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--data", help="Explain on this file (default: the test split)."),
    ] = None,
    repeats: Annotated[int, typer.Option("--repeats", help="Shuffles of each column.", min=1)] = 5,
    rows: Annotated[
        int, typer.Option("--rows", help="Rows (texts, images) explained one by one.", min=0)
    ] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print explain.json.")] = False,
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    device: Device = None,
) -> None:
    """Which input columns, words or pixels the run's predictions rest on (written to RUN/explain/)."""
    _import_tensorflow()
    from dlcli.explain.explain import explain as explain_run

    found = explain_run(run, data, repeats, rows, runs_dir, device)
    if as_json:
        print(json.dumps(found, indent=2))
        return
    for note in found["notes"]:
        err.print(f"note: {escape(note)}", highlight=False)
    if "columns" in found:
        out.print(console.importance_table(found), highlight=False)
    for row in found.get("words", []):
        words = ", ".join(f"{w['word']} ({w['effect']:+.3f})" for w in row["words"])
        out.print(
            f"{escape(row['text'][:70])!r} → {escape(row['prediction'])}: {escape(words)}", highlight=False
        )
    for shown in found.get("maps", []):
        out.print(
            f"{escape(shown['image'])} → {escape(shown['prediction'])}: {shown['map']}", highlight=False
        )
    out.print(f"written to {Path(found['run']) / 'explain'}", highlight=False)


@app.command()
def predict(
    run: Annotated[str, typer.Argument(help="Run directory, 'latest' or NAME/latest.", metavar="RUN")],
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV/Parquet rows, or .npy/.npz images.")],
    output: Annotated[Optional[Path], typer.Option("--output", help=".csv or .parquet")] = None,  # noqa: UP045
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
    device: Device = None,
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime",
            help="auto (the run's exported ONNX, else TFLite model, if any), tensorflow, onnx, tflite.",
            metavar="RUNTIME",
        ),
    ] = "auto",
) -> None:
    """Predictions for new data (the target column is optional)."""
    from dlcli.evaluation import inference

    rows = console.Rows()
    try:
        path, table, warnings = inference.predict(run, input, output, runs_dir, device, runtime, rows)
    finally:
        rows.close()
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    via = f" (with {table.attrs['runtime']}, without TensorFlow)" if "runtime" in table.attrs else ""
    if "tensorflow_because" in table.attrs:
        via = f" (with TensorFlow; {table.attrs['tensorflow_because']})"
    out.print(f"wrote {table.attrs.get('rows', len(table))} predictions{via} → {path}", highlight=False)


@app.command()
def export(
    run: Annotated[str, typer.Argument(help="Run directory, 'latest' or NAME/latest.", metavar="RUN")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="saved_model, tflite or onnx.", metavar="FORMAT")
    ],
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", help="Where to write it (default: RUN/export/).", metavar="PATH"),
    ] = None,
    quantize: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--quantize", help="float16 or int8 (tflite, onnx).", metavar="TYPE"),
    ] = None,
    max_drop: Annotated[
        float, typer.Option("--max-drop", help="Largest test-metric drop a quantized model may have.", min=0)
    ] = 0.01,
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
) -> None:
    """One file that takes raw inputs (columns, text, pixels), checked against dlcli predict first."""
    _import_tensorflow()
    from dlcli.export import export as export_mod

    meta = export_mod.export(run, fmt, output, quantize, max_drop, runs_dir)
    checked = meta["checked"]
    out.print(
        f"checked on {checked['rows']} {checked['split']} rows in {fmt}: largest difference from dlcli "
        f"predict {checked['max_difference']:.3g}; test {checked['metric']} {checked['artifact_metric']:.4f} "
        f"(dlcli: {checked['dlcli_metric']:.4f})",
        highlight=False,
    )
    out.print(f"wrote {meta['path']}", highlight=False)


@app.command()
def serve(
    run: Annotated[str, typer.Argument(help="Run directory, 'latest' or NAME/latest.", metavar="RUN")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Rows per model call, at most.", min=1)] = 64,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            "--max-wait-ms",
            help="How long an idle model waits after a request for others to batch with (0: none; "
            "requests that come while the model runs are batched anyway).",
            min=0,
        ),
    ] = 0.0,
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime", help="auto, tensorflow, onnx or tflite (as for predict).", metavar="RUNTIME"
        ),
    ] = "auto",
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", help="Seconds a client has for a request's headers, and its body.", min=0.1
        ),
    ] = 10.0,
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
) -> None:
    """HTTP predictions from raw inputs (POST /predict, GET /metadata, /health, /docs), micro-batched."""
    from dlcli.artifacts import runtime as runtime_mod

    runtime_mod.need("fastapi", "serve")
    runtime_mod.need("uvicorn", "serve")
    from dlcli.serve import serve as serve_mod

    serve_mod.check_address(host, port)
    model = serve_mod.load(run, runs_dir, runtime)

    def ready() -> None:
        out.print(
            f"serving {model.info['run']} ({model.runtime}) on http://{host}:{port}  "
            f"(max batch {max_batch}, max wait {max_wait_ms:g} ms; docs at /docs)",
            highlight=False,
        )

    serve_mod.run(model, host, port, max_batch, max_wait_ms, ready, timeout)


@app.command()
def tune(
    config: Annotated[Path, typer.Argument(help="The YAML config, with a search section.", metavar="CONFIG")],
    override: Overrides = None,
    trials: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--trials", help="Trials to finish (default: search.trials).", min=1),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", help="Trials at once, each in its own process.", min=1)] = 1,
    storage: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--storage", help="An Optuna database URL (default: SQLite in the study folder).", metavar="URL"
        ),
    ] = None,
    runs_dir: Annotated[
        Path, typer.Option("--run-dir", help="Folder of the runs: DIR/<name>/tune-<id>/.", metavar="DIR")
    ] = DEFAULT_RUNS_DIR,
    worker: Annotated[int, typer.Option("--worker", hidden=True)] = 0,
    threads: Annotated[Optional[int], typer.Option("--threads", hidden=True)] = None,  # noqa: UP045
) -> None:
    """Search the config's search section with Optuna; each trial an ordinary run. Rerun to continue."""
    from dlcli.artifacts import runtime as runtime_mod

    runtime_mod.need("optuna", "tune")
    _import_tensorflow()
    from dlcli.tune import trials as trials_mod
    from dlcli.tune import tune as tune_mod

    found = tune_mod.open_search(config, override or [], trials, storage, runs_dir, _say)
    found.worker, found.threads = worker, threads
    if worker == 0:
        out.print(
            f"study {found.folder} ({found.trials} trials, {found.direction} {found.metric})", highlight=False
        )
    with tune_mod.workers(found, jobs):
        tune_mod.run_trials(found)
    if worker:
        return
    summary = trials_mod.summarize(found)
    out.print(console.trials_table(summary["rows"]))
    for note in summary["notes"]:
        err.print(f"note: {escape(note)}", highlight=False)
    best = summary["best"]
    if best is not None:
        out.print(
            f"best: trial {best.number}, {found.metric} {console.fmt(best.value)}; its config: "
            f"{found.folder / 'best.yaml'} (dlcli train it to train that model again)",
            highlight=False,
        )


def _say(line: str) -> None:
    out.print(escape(line), highlight=False)


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="The YAML config.", metavar="CONFIG")],
    override: Overrides = None,
) -> None:
    """Check a config without loading data or TensorFlow."""
    from dlcli.config.config import load_config

    cfg = load_config(config, override or [])
    out.print(f"[green]ok[/] {config}: {cfg.name} ({cfg.task})", highlight=False)


@config_app.command("show")
def config_show(
    config: Annotated[Path, typer.Argument(help="The YAML config.", metavar="CONFIG")],
    override: Overrides = None,
) -> None:
    """The resolved config: defaults filled in, overrides applied."""
    from dlcli.config.config import load_config
    from dlcli.utils.yamlio import dump

    print(dump(load_config(config, override or []).to_yaml_dict()), end="")


@app.command()
def schema() -> None:
    """JSON Schema (draft 2020-12) of the config, for editors: dlcli schema > dlcli.schema.json"""
    from dlcli.config.config import json_schema

    print(json.dumps(json_schema(), indent=2))


@app.command()
def init(
    template: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional
        typer.Argument(
            help=f"One of: {', '.join(TEMPLATES)}; with --data, the config's path.", metavar="TEMPLATE"
        ),
    ] = None,
    path: Annotated[Optional[Path], typer.Argument(help="Where to write it (default TEMPLATE.yaml).")] = None,  # noqa: UP045
    data: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--data", help="Write the config from this data file or folder of class folders.", metavar="FILE"
        ),
    ] = None,
    target: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--target", help="With --data: the column to predict (without it: the candidates).", metavar="COL"
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config: a template, or one written from your data (--data)."""
    if data is not None:
        from dlcli.autoconfig.draft import write

        if path is not None:
            raise typer.BadParameter(
                "with --data give one PATH, where the config goes: dlcli init --data FILE [PATH]"
            )
        written = write(data, target, Path(template) if template is not None else None, force)
        out.print(
            f"wrote {written} from {data}; read its comments, then: dlcli train {written}", highlight=False
        )
        return
    if template is None:
        raise typer.BadParameter(f"give a TEMPLATE ({', '.join(TEMPLATES)}) or --data FILE")
    from dlcli.config.templates import write_template

    written = write_template(template, path, force)
    out.print(f"wrote {written}; edit its data section, then: dlcli validate {written}", highlight=False)


@app.command("runs")
def runs_(
    folder: Annotated[
        Path, typer.Argument(help="A runs folder, one name's folder or a run.", metavar="[DIR]")
    ] = DEFAULT_RUNS_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Every run under DIR, newest first: status, epochs, best validation value, test metric, duration."""
    from dlcli.runs import listing

    if not folder.is_dir():
        raise RunError(
            f"{folder}: no such folder; `dlcli train` keeps runs under runs/ in the folder it ran in, or "
            "under the folder its --run-dir named: give that folder, e.g. dlcli runs DIR"
        )
    rows = listing.list_runs(folder)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print(f"no runs under {folder}", highlight=False)
        return
    table = Table(show_edge=False, header_style="bold")
    for column in ("run", "started", "status", "epochs", "best (validation)", "test", "duration"):
        table.add_column(column, justify="right" if column in ("epochs", "duration") else "left")
    for row in rows:
        epochs = "" if row["epochs"] is None else f"{row['epochs']}/{row['epochs_planned'] or '?'}"
        if "folds" in row:
            epochs = f"{row['folds']['completed']}/{row['folds']['planned']} folds"
        best, test = row["best"], row["test"]
        spread = f" ± {console.fmt(test['spread'])}" if test and test.get("spread") is not None else ""
        table.add_row(
            f"{row['name']}/{row['id']}",
            (row["started_at"] or "")[:19].replace("T", " "),
            f"[{STATUS_STYLE.get(row['status'], 'red')}]{row['status']}[/]",
            epochs,
            f"{best['metric']} {console.fmt(best['value'])} @{best['epoch']}" if best else "",
            f"{test['metric']} {console.fmt(test['value'])}{spread}" if test else "",
            console.duration(row["duration_s"]),
        )
    console.print_wide(table)


STATUS_STYLE = {
    "completed": "green",
    "running": "cyan",
    "interrupted": "yellow",
    "killed": "yellow",
    "pruned": "magenta",
}


@app.command()
def compare(
    run: Annotated[
        list[str], typer.Argument(help="Two or more runs (directories, NAME/latest).", metavar="RUN...")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    runs_dir: RunsDir = DEFAULT_RUNS_DIR,
) -> None:
    """The config keys that differ and the metrics of each run, side by side."""
    from dlcli.runs import listing
    from dlcli.runs.runs import resolve

    result = listing.compare([resolve(r, runs_dir, folds=True) for r in run])
    if as_json:
        print(json.dumps(result, indent=2))
        return
    for title, rows in (
        ("run", {k: [console.cell(v) for v in vs] for k, vs in result["summary"].items()}),
        ("config (differences only)", result["config"]),
        ("metric", result["metrics"]),
    ):
        table = Table(show_edge=False, header_style="bold")
        table.add_column(title)
        for name in result["runs"]:
            table.add_column(name, justify="right")
        for key, values in rows.items():
            table.add_row(key, *(console.cell(v) for v in values))
        if title.startswith("config") and not rows:
            table.add_row("(identical configs)", *("" for _ in result["runs"]))
        console.print_wide(table)
        out.print()


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Versions, CPU features, GPUs, DLCLI_DATA_DIR and the download cache with the data sets found there."""
    from dlcli.cli import doctor as doctor_mod

    report = doctor_mod.report()
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for section, values in report.items():
        out.print(f"[bold]{section}[/]")
        for key, value in values.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            out.print(f"  {key}: {escape(str(shown if shown not in ('', None) else '—'))}", highlight=False)


def main() -> None:
    """Console entry point: user errors exit 2 without a traceback; failed runs exit 1."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "--debug" in sys.argv[1:]:  # accepted anywhere, not only before the command
        sys.argv = [sys.argv[0], *(a for a in sys.argv[1:] if a != "--debug")]
        os.environ["DLCLI_DEBUG"] = "1"
    debug = os.environ.get("DLCLI_DEBUG") == "1"
    try:
        app(standalone_mode=False)
    except DlcliError as exc:
        if debug:
            raise
        err.print(f"[bold red]{exc.prefix}:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[bold red]interrupted[/]")
        sys.exit(130)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - click's usage errors and anything unexpected
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # a usage error from typer's (vendored) click: wrong option, missing argument
            sys.exit(exc.exit_code)
        if debug:
            raise
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc}\n"
            "run again with --debug for the traceback",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


#: The exit status of `entry`'s main(), for `_end_now` (None: end the usual way).
_STATUS: dict[str, int | None] = {"code": None}


def entry() -> None:
    """`dlcli` as a command (the console script, `python -m dlcli`): main(); then, where TensorFlow was
    imported, the process ends after the last exit handler instead of tearing its modules down one by
    one, which took about 1 s of every such command (as long as `python -c "import tensorflow"` takes
    to exit). Every file is written, synced and renamed into place by then; tests call main()."""
    atexit.register(_end_now)  # registered first, run last: after logging's, TensorFlow's, MLflow's
    try:
        main()
    except SystemExit as exc:
        _STATUS["code"] = exc.code if isinstance(exc.code, int) else None
        raise
    _STATUS["code"] = 0


def _end_now() -> None:
    code = _STATUS["code"]
    if code is None or "tensorflow" not in sys.modules:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to say
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
