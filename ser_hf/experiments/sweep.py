"""Hyperparameter sweeps over a recipe: one training run per point, each a normal run directory with its own recipe.

    ser-hf sweep recipes/ravdess_cnn2d.yaml --grid learning_rate=1.0e-3,2.0e-3 --grid num_time_masks=0,2 \\
        --output_dir runs/sweep_cnn2d [--random 3] [--key value ...]

The grid comes from ``--grid KEY=V1,V2,...`` flags and/or a ``sweep:`` section of the recipe (``grid``, ``random``,
``metric``, ``split``, ``seed``, ``backend``); a key is any recipe key, or ``model_config.KEY`` (a dotted key sets
one entry of a mapping). Every point is checked (keys and values) before the first one trains. Each point trains
into ``OUTPUT_DIR/<point>/`` on its values (:func:`ser_hf.training.run_recipe.run_parsed_recipe`), with the
self-contained ``recipe.yaml`` that reproduces it written there first; a
finished point (``sweep_point.json``) is never trained again, and an interrupted one resumes from its checkpoints.
The sweep ranks the points by a validation metric (choosing on the test split would be tuning on it) and writes
``sweep.csv``, ``sweep.md`` and ``sweep.png`` (the metric against each swept key).

``--random N`` trains N points drawn at random (seeded) from the grid. ``--backend optuna`` lets optuna's TPE
sampler choose N distinct points of the grid one after the other, learning from the scores of those already trained
(the study is kept in ``optuna.db`` so that it resumes too); it needs ``pip install optuna``. The points train
through ``ser_hf.train`` rather than ``Trainer.hyperparameter_search``, which can only vary ``TrainingArguments``
(not ``max_duration_seconds``, SpecAugment or ``model_config``) and writes no ser-hf reports.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import random
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import pandas as pd

from ..atomic_files import atomic_path, save_figure, write_text_atomic
from ..errors import RecipeError, unknown_key_message
from ..evaluation.constants import METRIC_LABELS, SCALAR_METRICS, view_metrics
from ..extras import install_hint
from ..metric_table import METRICS
from ..recipe.overrides import check_dotted_key, command_line_values, read_recipe_values, recipe_keys, set_value
from ..recipe.recipe import Recipe
from ..recipe.yaml_io import load_yaml, write_recipe_file
from ..run_folder import METRICS_FILE, RUN_CONFIG_FILE, read_run
from ..run_record import TrainingRecord
from ..training.run_recipe import run_parsed_recipe
from .compare import summarize_reports
from .constants import BACKENDS

logger = logging.getLogger(__name__)

#: The recipe section that configures a sweep, and the keys it may hold.
SWEEP_SECTION = "sweep"
SWEEP_SECTION_KEYS = ("grid", "random", "metric", "split", "seed", "backend")
#: Files of a sweep: the results table (CSV and Markdown) and plot at the top, a recipe and a marker per point.
SWEEP_CSV = "sweep.csv"
SWEEP_MARKDOWN = "sweep.md"
SWEEP_PNG = "sweep.png"
POINT_RECIPE = "recipe.yaml"
POINT_MARKER = "sweep_point.json"
OPTUNA_STORAGE = "optuna.db"
# Recipe keys a sweep sets itself.
_RESERVED_KEYS = ("output_dir",)


@dataclass
class SweepSpec:
    """What to sweep and how to rank the points.

    Args:
        grid (`dict[str, list]`): recipe key -> values; the points are the grid's cartesian product.
        random (`int`, *optional*): train only this many points, drawn at random (seeded) or chosen by optuna.
        metric (`str`): the scalar metric that ranks the points (``unweighted_accuracy``, ``macro_f1``, ...).
        split (`str`): the split that metric is read on; ``validation`` unless you have a reason.
        seed (`int`): seed of the random draw (and of optuna's sampler); not the training seed.
        backend (`str`): ``grid`` (every point, or ``random`` of them) or ``optuna``.
    """

    grid: dict[str, list] = field(default_factory=dict)
    random: Optional[int] = None
    metric: str = "unweighted_accuracy"
    split: str = "validation"
    seed: int = 0
    backend: str = "grid"

    def __post_init__(self):
        if not self.grid:
            raise RecipeError(
                "A sweep needs a grid: grid options (KEY=V1,V2) or a sweep: {grid: {KEY: [V1, V2]}} section."
            )
        empty = [key for key, values in self.grid.items() if not isinstance(values, list) or not values]
        if empty:
            raise RecipeError(f"Grid key(s) {empty} need a non-empty list of values.")
        if self.metric not in SCALAR_METRICS:
            raise RecipeError(f"metric {self.metric!r} is not one of {', '.join(SCALAR_METRICS)}.")
        if self.split not in ("validation", "test"):
            raise RecipeError(f"split must be validation or test, got {self.split!r}.")
        if self.split == "test":
            logger.warning(
                "Ranking sweep points on the test split tunes on the test set: its scores are no longer "
                "held-out results."
            )
        if self.random is not None and self.random < 1:
            raise RecipeError(f"random must be a positive number of points, got {self.random}.")
        if self.backend not in BACKENDS:
            raise RecipeError(f"backend {self.backend!r} is not one of {', '.join(BACKENDS)}.")

    @property
    def column(self) -> str:
        """The results column that ranks the points, e.g. ``validation_unweighted_accuracy``."""
        return f"{self.split}_{self.metric}"

    @property
    def greater_is_better(self) -> bool:
        return METRICS[self.metric].greater_is_better


@dataclass
class SweepPoint:
    """One point of the grid: its values, the run directory it trains into and its full recipe."""

    values: dict[str, Any]
    run_dir: Path
    recipe: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def finished(self) -> bool:
        """Whether the point has trained (its marker exists) with this very recipe; a point trained from another
        recipe is an error, never silently reused."""
        marker = self.run_dir / POINT_MARKER
        if not marker.is_file():
            return False
        recorded = json.loads(marker.read_text()).get("recipe", {})
        current = _jsonable(self.recipe)
        changed = sorted(key for key in set(recorded) | set(current) if recorded.get(key) != current.get(key))
        if changed:
            raise RecipeError(
                f"{self.run_dir} was trained with other values of {', '.join(changed)}; the sweep would "
                "mix two settings. Choose another output_dir, or remove that folder."
            )
        return True


# --- The grid -----------------------------------------------------------------------------------------------------


def parse_grid_option(text: str) -> tuple[str, list]:
    """``KEY=V1,V2,...`` -> ``(KEY, [V1, V2, ...])``, each value read as YAML (``1.0e-3`` is a float, ``[16, 32]`` a
    list, ``null`` None)."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise RecipeError(f"--grid {text!r} is not of the form KEY=V1,V2,...")
    try:
        parsed = load_yaml(f"[{values}]")
    except Exception as error:  # a YAML error: say which option
        raise RecipeError(f"--grid {key}: cannot read the values {values!r} ({error}).") from None
    return key, parsed


def sweep_spec(
    section: Optional[Mapping[str, Any]],
    grid_options: Sequence[str] = (),
    random_points=None,
    metric=None,
    split=None,
    seed=None,
    backend=None,
    recipe_path: str = "the recipe",
) -> SweepSpec:
    """The sweep of a recipe's ``sweep:`` section, with command-line options taking precedence (a ``--grid`` key
    replaces the section's values for that key)."""
    section = dict(section or {})
    if not isinstance(section, dict):
        raise RecipeError(f"The sweep: section of {recipe_path} must be a mapping.")
    unknown = [key for key in section if key not in SWEEP_SECTION_KEYS]
    if unknown:
        raise RecipeError(
            f"Unknown key(s) {', '.join(unknown_key_message(k, SWEEP_SECTION_KEYS) for k in unknown)} "
            f"in the sweep: section of {recipe_path}."
        )
    grid = section.get("grid") or {}
    if not isinstance(grid, dict):
        raise RecipeError(f"sweep: grid in {recipe_path} must map keys to lists of values.")
    grid = {str(key): values for key, values in grid.items()}
    for option in grid_options:
        key, values = parse_grid_option(option)
        grid[key] = values
    chosen = {"random": random_points, "metric": metric, "split": split, "seed": seed, "backend": backend}
    settings = {key: value if value is not None else section.get(key) for key, value in chosen.items()}
    return SweepSpec(grid=grid, **{key: value for key, value in settings.items() if value is not None})


def check_grid_keys(grid: Mapping[str, list], base_values: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    """Every grid key must be a recipe key the sweep does not set itself and the command line does not fix; fails
    before any run, naming the key."""
    known = recipe_keys()
    for key in grid:
        top = check_dotted_key(key, "grid", known)
        dot = "." in key
        if top in _RESERVED_KEYS:
            raise RecipeError(f"grid key {top} cannot be swept; the sweep gives each point its own folder under it.")
        if top in overrides:
            raise RecipeError(
                f"grid key {key} is also set on the command line (--{top}), which would override every "
                "point's value; drop one of them."
            )
        if dot and base_values.get(top) is not None and not isinstance(base_values.get(top), (dict, str)):
            raise RecipeError(f"grid key {key!r} sets an entry of {top}, which is not a mapping in the recipe.")


def grid_points(grid: Mapping[str, list]) -> list[dict[str, Any]]:
    """The cartesian product of the grid, in the order of its keys and values."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[key] for key in keys))]


def select_points(points: list[dict[str, Any]], count: Optional[int], seed: int) -> list[dict[str, Any]]:
    """``count`` points drawn without replacement (seeded, in grid order), or all of them."""
    if count is None or count >= len(points):
        if count is not None:
            logger.info("random=%d covers the whole grid of %d points: training every point.", count, len(points))
        return points
    chosen = sorted(random.Random(seed).sample(range(len(points)), count))
    return [points[index] for index in chosen]


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _jsonable(values: Mapping[str, Any]) -> Any:
    return json.loads(json.dumps(values, default=str))


def point_name(values: Mapping[str, Any]) -> str:
    """A readable folder name, ``learning_rate=0.001__num_time_masks=2``; a short hash of the values is added where
    characters had to be replaced or the name was shortened, so two points never share a folder."""
    raw = "__".join(f"{key}={_format_value(value)}" for key, value in values.items())
    name = re.sub(r"[^A-Za-z0-9._=+-]", "-", raw)
    if name != raw or len(name) > 100:
        digest = hashlib.sha1(json.dumps(_jsonable(values), sort_keys=True).encode()).hexdigest()[:8]
        name = f"{name[:90]}-{digest}"
    return name


def point_recipe(base_values: Mapping[str, Any], values: Mapping[str, Any], run_dir: Path) -> dict[str, Any]:
    """The full recipe of one point: the base recipe (with the command-line overrides), the point's values, and its
    own output_dir."""
    recipe = dict(base_values)
    for key, value in values.items():
        recipe = set_value(recipe, key, value)
    recipe["output_dir"] = str(run_dir)
    return recipe


def check_point(recipe: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Parse a point's recipe as ``ser_hf.train`` will (every key and value checked), without training."""
    try:
        Recipe.from_values(recipe)
    except RecipeError as error:
        raise RecipeError(f"Sweep point {dict(values)}: {error}") from None


def plan_sweep(
    recipe_path: str | Path, spec: SweepSpec, overrides: Mapping[str, Any], base_values: Mapping[str, Any]
) -> tuple[Path, list[SweepPoint]]:
    """Check the grid and every point (keys and values), and place each point in its folder; nothing is trained or
    written. Returns the sweep folder and the points (the whole grid for optuna, else the selection)."""
    check_grid_keys(spec.grid, base_values, overrides)
    values = {**base_values, **overrides}
    if "output_dir" not in values:
        raise RecipeError(
            f"The sweep writes under the recipe's output_dir: set it in {recipe_path} or with --output_dir."
        )
    sweep_dir = Path(values["output_dir"])
    if (sweep_dir / RUN_CONFIG_FILE).is_file() or (sweep_dir / METRICS_FILE).is_file():
        raise RecipeError(f"{sweep_dir} holds a training run; a sweep needs a folder of its own: set --output_dir.")
    all_points = grid_points(spec.grid)
    points = all_points if spec.backend == "optuna" else select_points(all_points, spec.random, spec.seed)
    planned: dict[str, SweepPoint] = {}
    for point_values in points:
        run_dir = sweep_dir / point_name(point_values)
        point = SweepPoint(point_values, run_dir, point_recipe(values, point_values, run_dir))
        if point.name in planned:
            raise RecipeError(f"The grid holds the point {point_values} twice.")
        check_point(point.recipe, point_values)
        planned[point.name] = point
    # A folder trained from another recipe stops the sweep here, before any run.
    finished = sum(point.finished for point in planned.values())
    if finished:
        logger.info("%d of the %d points have finished already and are read back.", finished, len(planned))
    return sweep_dir, list(planned.values())


# --- Running the points -------------------------------------------------------------------------------------------


def point_results(point: SweepPoint, status: str = "finished", error: Optional[str] = None) -> dict[str, Any]:
    """One row of the results table: the point's values, its validation and test scores (mean over folds, with the
    standard deviation where there are several), size and training time."""
    row: dict[str, Any] = {
        "point": point.name,
        **{key: _format_value(v) if isinstance(v, (list, dict)) else v for key, v in point.values.items()},
    }
    row["status"] = status
    if error is not None:
        row["error"] = error
    if status != "finished":
        return row
    reports = read_run(point.run_dir).reports
    row["folds"] = len(reports)
    for split in ("validation", "test"):
        if not all(split in report.evaluation for report in reports):
            continue
        summary = summarize_reports(reports, split)
        for metric in SCALAR_METRICS:
            row[f"{split}_{metric}"] = summary["mean"][metric]
            if len(reports) > 1:
                row[f"{split}_{metric}_std"] = summary["std"][metric]
    training = [report.training or TrainingRecord() for report in reports]
    row["trainable_parameters"] = (training[0].parameters or {}).get("trainable")
    row["train_seconds"] = sum(t.wall_seconds or 0.0 for t in training)
    return row


def run_point(point: SweepPoint) -> dict[str, Any]:
    """Train one point as ``ser_hf.train`` trains a recipe (:func:`~ser_hf.training.run_recipe.run_parsed_recipe`, on
    the values of the recipe file written in its folder to reproduce it) unless it has finished; returns its results
    row."""
    if point.finished:
        logger.info("Sweep point %s has finished already: reading its results.", point.name)
        return point_results(point)
    recipe_path = write_recipe_file(
        point.run_dir / POINT_RECIPE,
        point.recipe,
        header=f"Sweep point {json.dumps(_jsonable(point.values))}; reproduce with: "
        f"python -m ser_hf.train {point.run_dir / POINT_RECIPE}",
    )
    logger.info("Sweep point %s: training into %s", point.values, point.run_dir)
    started = time.time()
    run_parsed_recipe(Recipe.from_values(point.recipe, given=point.recipe.keys(), path=str(recipe_path)))
    write_text_atomic(
        point.run_dir / POINT_MARKER,
        json.dumps(
            {
                "values": _jsonable(point.values),
                "recipe": _jsonable(point.recipe),
                "started": started,
                "finished": time.time(),
            },
            indent=2,
        )
        + "\n",
    )
    return point_results(point)


def _run_safely(point: SweepPoint) -> dict[str, Any]:
    try:
        return run_point(point)
    except RecipeError:
        raise
    except Exception as error:  # one failed point (out of memory, diverged...) must not lose the others
        logger.error("Sweep point %s failed:\n%s", point.name, traceback.format_exc())
        return point_results(point, status="failed", error=f"{type(error).__name__}: {error}")


def run_grid(points: Sequence[SweepPoint]) -> list[dict[str, Any]]:
    return [_run_safely(point) for point in points]


def run_optuna(points: Sequence[SweepPoint], spec: SweepSpec, sweep_dir: Path) -> list[dict[str, Any]]:
    """Let optuna's TPE sampler pick ``spec.random`` distinct points of the grid (default: all of it), learning from
    the scores of the points already trained; the study lives in ``optuna.db`` so that a re-run continues it."""
    optuna = import_optuna()
    by_values = {json.dumps(_jsonable(p.values), sort_keys=True): p for p in points}
    by_name = {p.name: p for p in points}
    choices = {key: [json.dumps(value) for value in values] for key, values in spec.grid.items()}
    sweep_dir.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name="ser-hf-sweep",
        storage=f"sqlite:///{(sweep_dir / OPTUNA_STORAGE).resolve()}",
        load_if_exists=True,
        direction="maximize" if spec.greater_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=spec.seed),
    )
    rows: dict[str, dict] = {}

    def objective(trial) -> float:
        values = {key: json.loads(trial.suggest_categorical(key, options)) for key, options in choices.items()}
        point = by_values[json.dumps(_jsonable(values), sort_keys=True)]
        trial.set_user_attr("point", point.name)
        # A point drawn again is read back, not trained again: TPE gets its score, the sweep loses no time.
        row = rows.get(point.name) or _run_safely(point)
        rows[point.name] = row
        if row["status"] != "finished" or spec.column not in row:
            raise optuna.TrialPruned(f"point {point.name} gave no {spec.column}")
        return row[spec.column]

    def tried() -> set[str]:
        return {t.user_attrs["point"] for t in study.trials if t.state.is_finished() and "point" in t.user_attrs}

    target = min(spec.random or len(points), len(points))
    attempts = 0
    while len(tried()) < target and attempts < 20 * target:  # TPE may draw a point twice; the cap ends the search
        study.optimize(objective, n_trials=1)
        attempts += 1
    for name in sorted(tried() - set(rows)):  # points of earlier sessions
        point = by_name[name]
        rows[name] = point_results(point) if point.finished else point_results(point, status="failed")
    return list(rows.values())


def import_optuna():
    """optuna, or a :class:`RecipeError` saying how to get it (it is an optional dependency)."""
    try:
        import optuna
    except ImportError:
        raise RecipeError(
            "backend optuna needs optuna, which is not installed: pip install optuna (or "
            f"{install_hint('experiments')}); the grid backend, with or without a random draw of points, needs "
            "nothing more."
        ) from None
    return optuna


# --- Results ------------------------------------------------------------------------------------------------------


def results_table(rows: Sequence[Mapping[str, Any]], spec: SweepSpec) -> pd.DataFrame:
    """The points as a table, best first by the ranking column (failed points last)."""
    table = pd.DataFrame(list(rows))
    if spec.column in table:
        table = table.sort_values(
            [spec.column, "point"], ascending=[not spec.greater_is_better, True], na_position="last"
        )
    return table.reset_index(drop=True)


def format_sweep(table: pd.DataFrame, spec: SweepSpec) -> str:
    """The results as Markdown: swept values, then validation and test UA / WA / macro-F1 (%)."""
    metrics = view_metrics("sweep")
    score_columns = [f"{split}_{m}" for split in ("validation", "test") for m in metrics if f"{split}_{m}" in table]
    header = list(spec.grid) + [f"{c.split('_', 1)[0]} {METRIC_LABELS[c.split('_', 1)[1]]}" for c in score_columns]
    lines = [
        f"# Sweep: {len(table)} points ranked by {spec.split} {METRIC_LABELS[spec.metric]}",
        "",
        "| rank | " + " | ".join(header) + " | training time | status |",
        "|---:|" + "---|" * len(spec.grid) + "---:|" * len(score_columns) + "---:|---|",
    ]
    for rank, row in enumerate(table.to_dict("records"), start=1):
        cells = [_format_value(row[key]) for key in spec.grid]
        for column in score_columns:
            value, std = row.get(column), row.get(f"{column}_std")
            cells.append(
                "" if _missing(value) else f"{100 * value:.1f}" + ("" if _missing(std) else f" ± {100 * std:.1f}")
            )
        seconds = row.get("train_seconds")
        cells.append("" if _missing(seconds) else f"{seconds / 60:.1f} min")
        lines.append(f"| {rank} | " + " | ".join(cells) + f" | {row['status']} |")
    return "\n".join(lines) + "\n"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def plot_sweep(table: pd.DataFrame, spec: SweepSpec, path: str | Path) -> None:
    """One panel per swept key: the ranking metric of every point against the key's value, with the best point per
    value joined by a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(spec.grid)
    figure, axes_list = plt.subplots(1, len(keys), figsize=(4.0 * len(keys), 3.6), squeeze=False)
    scored = table[table[spec.column].notna()] if spec.column in table else None
    for axes, key in zip(axes_list[0], keys):
        values = spec.grid[key]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        labels = [_format_value(v) for v in values]
        positions = {label: (float(v) if numeric else index) for index, (v, label) in enumerate(zip(values, labels))}
        placed = (
            []
            if scored is None
            else [(positions.get(_format_value(v)), 100 * score) for v, score in zip(scored[key], scored[spec.column])]
        )
        x, y = [p for p, _ in placed if p is not None], [s for p, s in placed if p is not None]
        axes.scatter(x, y, alpha=0.7)
        best = {}
        for xi, yi in zip(x, y):
            best[xi] = max(best.get(xi, yi), yi) if spec.greater_is_better else min(best.get(xi, yi), yi)
        if best:
            order = sorted(best)
            axes.plot(order, [best[o] for o in order], color="tab:red", label="best per value")
            axes.legend(fontsize=7)
        if numeric and min(positions.values()) > 0 and max(positions.values()) / min(positions.values()) >= 10:
            axes.set_xscale("log")
        if not numeric:
            axes.set_xticks(list(positions.values()), labels, rotation=30, fontsize=7)
        axes.set_xlabel(key)
        axes.set_ylabel(f"{spec.split} {METRIC_LABELS[spec.metric]} (%)")
    figure.suptitle(
        f"{len(table)} sweep points: {spec.split} {METRIC_LABELS[spec.metric]} against each swept key", fontsize=9
    )
    save_figure(figure, path)


def write_sweep_results(sweep_dir: Path, rows: Sequence[Mapping[str, Any]], spec: SweepSpec) -> pd.DataFrame:
    """Write ``sweep.csv``, ``sweep.md`` and ``sweep.png``; returns the ranked table."""
    table = results_table(rows, spec)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(sweep_dir / SWEEP_CSV) as partial:
        table.to_csv(partial, index=False)
    write_text_atomic(sweep_dir / SWEEP_MARKDOWN, format_sweep(table, spec))
    plot_sweep(table, spec, sweep_dir / SWEEP_PNG)
    return table


def run_sweep(
    recipe_path: str | Path,
    spec_options: Mapping[str, Any] = None,
    overrides: Sequence[str] = (),
    dry_run: bool = False,
) -> tuple[pd.DataFrame, SweepSpec, list[SweepPoint]]:
    """Run (or with ``dry_run`` only plan) the sweep of a recipe; returns the ranked results, the sweep and its
    points."""
    base_values, sections = read_recipe_values(recipe_path, sections=(SWEEP_SECTION,))
    spec = sweep_spec(sections.get(SWEEP_SECTION), recipe_path=str(recipe_path), **(spec_options or {}))
    override_values = command_line_values(overrides)
    sweep_dir, points = plan_sweep(recipe_path, spec, override_values, base_values)
    if spec.backend == "optuna":
        import_optuna()
    logger.info("Sweep of %s: %d point(s) into %s (%s backend)", recipe_path, len(points), sweep_dir, spec.backend)
    if dry_run:
        table = pd.DataFrame([{"point": p.name, **p.values, "finished": p.finished} for p in points])
        return table, spec, points
    rows = run_optuna(points, spec, sweep_dir) if spec.backend == "optuna" else run_grid(points)
    return write_sweep_results(sweep_dir, rows, spec), spec, points


__all__ = [
    "SweepPoint",
    "SweepSpec",
    "check_grid_keys",
    "grid_points",
    "parse_grid_option",
    "plan_sweep",
    "point_name",
    "run_sweep",
    "select_points",
    "sweep_spec",
    "write_sweep_results",
]
