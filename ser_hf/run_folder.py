"""The folder a training run writes into, and the one owner of its layout: the name of every file a run writes
(:class:`RunDir` reads them, locally or from the Hub repository a run was pushed to), which of its entries ser-hf
wrote, the lock that keeps one training in it at a time, removing a previous run without touching anything else, and
finding the checkpoint a run resumes from.

A user's files are never deleted: ``overwrite_output_dir`` removes only the entries a run writes (the names below),
a run refuses to start in a folder that already holds files no ser-hf run wrote, and never in a folder that is, or
contains, one of the recipe's data directories.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import getpass
import json
import logging
import os
import re
import shutil
import socket
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

from filelock import FileLock, Timeout
from transformers.utils import CONFIG_NAME, FEATURE_EXTRACTOR_NAME, SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

from .atomic_files import output_relation, write_text_atomic
from .errors import RecipeError
from .recipe.yaml_io import RECIPE_FILE
from .run_record import EvalReport, FoldSummary, RunConfig, RunReport

logger = logging.getLogger(__name__)

# --- File names ---------------------------------------------------------------------------------------------------
# Every name a run writes, defined here only: writers and readers (RunDir) import them.

#: The run's configuration, written when a run starts and compared when it resumes.
RUN_CONFIG_FILE = "run_config.json"
#: What each split held (clips per speaker, each clip's label, speaker and bytes' digest:
#: :func:`~ser_hf.data.splits.clip_fingerprint`),
#: written beside ``run_config.json`` and compared before a run is resumed or read back.
CLIP_FINGERPRINT_FILE = "clip_fingerprint.json"
#: A finished split's report (written last: it marks the run finished) and the same as Markdown.
METRICS_FILE = "metrics.json"
REPORT_MARKDOWN = "report.md"
#: Mean ± std over the folds of a k-fold or leave-one-speaker-out run, at its root.
SUMMARY_FILE = "summary.json"
SUMMARY_MARKDOWN = "summary.md"
TRAINING_CURVES_PNG = "training_curves.png"
#: The confusion matrix of each evaluated split (``confusion_matrix_test.png``).
SPLIT_CONFUSION_MATRIX_PNG = "confusion_matrix_{split}.png"
#: The reliability diagrams of each evaluated split before and after temperature scaling.
SPLIT_RELIABILITY_DIAGRAM_PNG = "reliability_diagram_{split}.png"
#: The model card (the recipe the run ran is RECIPE_FILE, from the recipe package that writes and reads it).
CARD_FILE = "README.md"
#: The exported model's files, as transformers names them.
MODEL_CONFIG_FILE = CONFIG_NAME
FEATURE_EXTRACTOR_FILE = FEATURE_EXTRACTOR_NAME
#: What Trainer's ``save_model`` writes beside the weights, and what marks a checkpoint's save finished.
TRAINING_ARGS_FILE = "training_args.bin"
TRAINER_STATE_FILE = "trainer_state.json"
#: The folder of each fold of a k-fold or leave-one-speaker-out run (``fold-0``, ``fold-1``, ...).
FOLD_FOLDER = "fold-{fold}"
#: ``ser-hf evaluate`` reports of a run's model (``reports/CORPUS-SPLIT/``), pushed with it.
REPORTS_DIR = "reports"
EVAL_REPORT_JSON = "eval_report.json"
EVAL_REPORT_MARKDOWN = "eval_report.md"
CONFUSION_MATRIX_PNG = "confusion_matrix.png"
CROSS_CORPUS_JSON = "cross_corpus.json"
CROSS_CORPUS_MARKDOWN = "cross_corpus.md"
CROSS_CORPUS_PNG = "cross_corpus_ua.png"
#: The lock a training holds on its output folder, and who holds it (the lock file itself is emptied on each try).
LOCK_FILE = ".ser-hf.lock"
HOLDER_FILE = ".ser-hf.lock.json"


def fold_folder(fold: int | str) -> str:
    """The folder name of a fold (``fold-3``)."""
    return FOLD_FOLDER.format(fold=fold)


def split_confusion_matrix_png(split: str) -> str:
    """The file name of a split's confusion matrix in a run folder (``confusion_matrix_test.png``)."""
    return SPLIT_CONFUSION_MATRIX_PNG.format(split=split)


def split_reliability_diagram_png(split: str) -> str:
    """The file name of a split's reliability diagrams in a run folder (``reliability_diagram_test.png``)."""
    return SPLIT_RELIABILITY_DIAGRAM_PNG.format(split=split)


#: Files a run writes into its folder (and each ``fold-N`` folder): reports, plots, model, card, recipe, and the
#: model's remote-code files (``*.py``, copied by ``register_for_auto_class``; see :func:`_remote_code_files`).
RUN_OUTPUT_PATTERNS: tuple[str, ...] = (
    RUN_CONFIG_FILE,
    CLIP_FINGERPRINT_FILE,
    LOCK_FILE,
    HOLDER_FILE,
    METRICS_FILE,
    REPORT_MARKDOWN,
    SUMMARY_FILE,
    SUMMARY_MARKDOWN,
    TRAINING_CURVES_PNG,
    split_confusion_matrix_png("*"),
    split_reliability_diagram_png("*"),
    CARD_FILE,
    RECIPE_FILE,
    MODEL_CONFIG_FILE,
    SAFE_WEIGHTS_NAME,
    "model-*-of-*.safetensors",
    SAFE_WEIGHTS_INDEX_NAME,
    FEATURE_EXTRACTOR_FILE,
    TRAINING_ARGS_FILE,
    ".*.partial",
)
#: An intermediate round of self-training (``self_training_rounds``, :mod:`ser_hf.training.self_training`): its picks
#: and, until it finishes, its checkpoints.
SELF_TRAINING_ROUND_FOLDER = "self-training-round-{}"
#: A model soup's member other than the run's own (``soup_size``, :mod:`ser_hf.training.soup`): its trained weights
#: and, until it finishes, its checkpoints.
SOUP_MEMBER_FOLDER = "soup-{}"
#: Folders written whole by Trainer (``checkpoint-N``), ser-hf's atomic writes (``.NAME.XXXX.partial``), a round of
#: self-training or a soup's member, which overwriting removes whole.
WHOLE_FOLDER_PATTERNS: tuple[str, ...] = (
    "checkpoint-[0-9]*",
    ".*.partial",
    SELF_TRAINING_ROUND_FOLDER.format("[0-9]*"),
    SOUP_MEMBER_FOLDER.format("[0-9]*"),
)
#: Files of ``ser-hf evaluate`` reports (``reports/CORPUS-SPLIT/``) and of Trainer's logs (``runs/DATE/``).
REPORT_PATTERNS: tuple[str, ...] = (
    EVAL_REPORT_JSON,
    EVAL_REPORT_MARKDOWN,
    CONFUSION_MATRIX_PNG,
    CROSS_CORPUS_JSON,
    CROSS_CORPUS_MARKDOWN,
    CROSS_CORPUS_PNG,
    ".*.partial",
)
LOG_PATTERNS: tuple[str, ...] = ("events.out.tfevents.*",)

#: What is ser-hf's in a folder of each kind: (its file patterns, its subfolders by pattern and their kind).
_FOLDER_KINDS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "run": (RUN_OUTPUT_PATTERNS, {fold_folder("*"): "run", REPORTS_DIR: "reports", "runs": "logs"}),
    "reports": (REPORT_PATTERNS, {"*": "reports"}),
    "logs": (LOG_PATTERNS, {"*": "logs"}),
}


# --- Reading a run ------------------------------------------------------------------------------------------------


def _fold_number(folder: Path) -> int:
    match = re.fullmatch(FOLD_FOLDER.format(fold=r"(\d+)"), folder.name)
    return int(match.group(1)) if match else -1


def _checkpoint_step(folder: Path) -> Optional[int]:
    step = folder.name.split("-")[-1]
    return int(step) if step.isdigit() else None


def checkpoint_step(checkpoint: str | os.PathLike) -> Optional[int]:
    """The step a checkpoint was saved at: its ``trainer_state.json``'s ``global_step``, else the N of its name
    (``checkpoint-N``); `None` when neither says."""
    checkpoint = Path(checkpoint)
    try:
        step = json.loads((checkpoint / TRAINER_STATE_FILE).read_text(encoding="utf-8")).get("global_step")
    except (OSError, ValueError, AttributeError):
        step = None
    if isinstance(step, int) and not isinstance(step, bool):
        return step
    return _checkpoint_step(checkpoint)


@dataclass(frozen=True)
class RunDir:
    """A training run's output folder (a model's, a fold's, or the root of a k-fold run), read by file name: locally,
    or from the Hub repository it was pushed to (files fetched with ``hf_hub_download``). Listing its folds,
    checkpoints and ``reports/`` needs the local folder.

    Args:
        path (`Path`): the folder; for a Hub repository, the folder inside it (``.`` for its root, ``fold-0``).
        repo_id (`str`, *optional*): the Hub repository that holds the run.
        revision (`str`, *optional*), token (`str` or `bool`, *optional*): of the Hub repository.

    Example:

    ```python
    >>> RunDir("outputs/demo").read_config().model_type
    'cnn2d'
    >>> [fold.path.name for fold in RunDir("outputs/kfold").fold_dirs()]
    ['fold-0', 'fold-1', 'fold-2', 'fold-3', 'fold-4']
    >>> RunDir.find("me/ser-demo").read_report().split.speakers["test"]  # a Hub repository
    ['04']
    ```
    """

    path: Path = Path(".")
    repo_id: Optional[str] = None
    revision: Optional[str] = None
    token: Optional[Union[str, bool]] = None

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def find(
        cls, name_or_path: str | os.PathLike, *, revision: Optional[str] = None, token: Optional[str | bool] = None
    ) -> RunDir:
        """The folder ``name_or_path`` where there is one, else the Hub repository of that id (as ``from_pretrained``
        decides)."""
        if Path(name_or_path).is_dir():
            return cls(Path(name_or_path))
        return cls(repo_id=str(name_or_path), revision=revision, token=token)

    @property
    def on_hub(self) -> bool:
        return self.repo_id is not None

    def __str__(self) -> str:
        if not self.on_hub:
            return str(self.path)
        return self.repo_id if self.path == Path(".") else f"{self.repo_id}/{self.path.as_posix()}"

    @property
    def is_fold(self) -> bool:
        """Whether the folder is one fold (``fold-N``) of a k-fold run."""
        return _fold_number(self.path) >= 0

    def fold(self, fold: int | str) -> RunDir:
        """The folder of one fold (``fold-N``)."""
        return dataclasses.replace(self, path=self.path / fold_folder(fold))

    # --- files ---

    def file(self, name: str) -> Path:
        """The local path of one of the run's files."""
        self._require_local(f"the path of {name}")
        return self.path / name

    def has(self, name: str) -> bool:
        """Whether the (local) run holds the file ``name``."""
        return self.file(name).is_file()

    def read_json(self, name: str) -> Optional[dict[str, Any]]:
        """The JSON file ``name`` of the run, or `None` when the run has none; a damaged one is an error naming it."""
        if self.on_hub:
            from huggingface_hub import hf_hub_download
            from huggingface_hub.errors import EntryNotFoundError

            subfolder = None if self.path == Path(".") else self.path.as_posix()
            try:
                path = Path(
                    hf_hub_download(self.repo_id, name, subfolder=subfolder, revision=self.revision, token=self.token)
                )
            except EntryNotFoundError:
                return None
            where = f"{self}/{name}"
        else:
            path = where = self.path / name
            if not path.is_file():
                return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ValueError(f"{where} is not valid JSON: {error}") from None

    def read_config(self) -> Optional[RunConfig]:
        """``run_config.json``: the model, data, augmentation and training arguments the run started with."""
        config = self.read_json(RUN_CONFIG_FILE)
        return None if config is None else RunConfig.from_dict(config, where=f"{self}/{RUN_CONFIG_FILE}")

    def read_report(self) -> Optional[RunReport]:
        """``metrics.json``, the report of a finished split; `None` while the run has not finished."""
        report = self.read_json(METRICS_FILE)
        return None if report is None else RunReport.from_dict(report, where=f"{self}/{METRICS_FILE}")

    def check_records(self) -> None:
        """Read and validate every ``metrics.json`` and ``run_config.json`` of the (local) run, its folds' too: a
        value edited out of its type or range is a :class:`~ser_hf.errors.RunRecordError` naming the file, the key
        and the value (what is published must have been read through it)."""
        for folder in (self, *self.fold_dirs(finished=False)):
            folder.read_report()
            folder.read_config()

    def read_summary(self) -> Optional[dict[str, Any]]:
        """``summary.json``, the mean ± std over the folds at the root of a k-fold run (as a dict; :func:`read_run`
        reads it as a :class:`~ser_hf.run_record.FoldSummary`)."""
        return self.read_json(SUMMARY_FILE)

    def read_model_config(self) -> Optional[dict[str, Any]]:
        """The exported model's ``config.json``."""
        return self.read_json(MODEL_CONFIG_FILE)

    def read_feature_extractor_config(self) -> Optional[dict[str, Any]]:
        """The exported feature extractor's ``preprocessor_config.json``."""
        return self.read_json(FEATURE_EXTRACTOR_FILE)

    # --- the local folder ---

    def _require_local(self, what: str) -> None:
        if self.on_hub:
            raise ValueError(f"{self} is a Hub repository: {what} needs a local run folder.")

    def is_finished(self) -> bool:
        """Whether the split's training finished (its ``metrics.json`` is written last)."""
        return self.has(METRICS_FILE)

    def is_run_folder(self) -> bool:
        """A folder a ser-hf training wrote: its ``run_config.json``, or the ``fold-N/run_config.json`` of a k-fold
        run."""
        return self.has(RUN_CONFIG_FILE) or any(fold.has(RUN_CONFIG_FILE) for fold in self.fold_dirs(finished=False))

    def fold_dirs(self, finished: bool = True) -> list[RunDir]:
        """The ``fold-N`` folders of a k-fold run in fold order; with ``finished``, those with a ``metrics.json``."""
        self._require_local("listing its folds")
        folders = sorted((p for p in self.path.glob(fold_folder("*")) if p.is_dir()), key=_fold_number)
        folds = [dataclasses.replace(self, path=folder) for folder in folders]
        return [fold for fold in folds if fold.is_finished()] if finished else folds

    def eval_reports(self) -> list[tuple[str, dict[str, Any]]]:
        """``(folder relative to the run, eval_report.json)`` of every report ``ser-hf evaluate`` wrote into
        ``reports/``."""
        self._require_local("listing its reports")
        return [
            (path.parent.relative_to(self.path).as_posix(), self.read_json(path.relative_to(self.path).as_posix()))
            for path in sorted((self.path / REPORTS_DIR).glob(f"**/{EVAL_REPORT_JSON}"))
        ]

    def checkpoints(self) -> list[Path]:
        """Trainer's ``checkpoint-N`` folders, the newest first."""
        self._require_local("listing its checkpoints")
        found = [p for p in self.path.glob("checkpoint-*") if _checkpoint_step(p) is not None]
        return sorted(found, key=_checkpoint_step, reverse=True)

    def holds_progress(self) -> bool:
        """Whether a run got far enough here to be resumed or read back: a checkpoint or a finished report."""
        return self.is_finished() or any(self.path.glob("checkpoint-*"))

    def last_complete_checkpoint(self, max_steps: Optional[int] = None) -> Optional[str]:
        """The newest ``checkpoint-N`` whose save finished (it has ``trainer_state.json``), whose
        ``trainer_state.json`` is valid JSON with a step that fits (``global_step`` is N, and within the run's
        ``max_steps``) and whose files read whole (:func:`damaged_file`), or `None`; each one passed over is named in a
        warning with the reason and what the run does instead (resume from the checkpoint found, or train from
        scratch when none is left). With ``max_steps`` (the resuming run's, when positive), a checkpoint past it is
        passed over too: resumed, it would end the run at once with more steps than asked for."""
        passed_over, found = [], None
        for checkpoint in self.checkpoints():
            step = _checkpoint_step(checkpoint)
            if max_steps is not None and max_steps > 0 and step is not None and step > max_steps:
                passed_over.append((checkpoint, f"its step {step} is past this run's max_steps {max_steps}"))
                continue
            if not (checkpoint / TRAINER_STATE_FILE).is_file():
                passed_over.append((checkpoint, f"its save did not finish (no {TRAINER_STATE_FILE})"))
                continue
            damage = damaged_trainer_state(checkpoint) or damaged_file(checkpoint)
            if damage is not None:
                passed_over.append((checkpoint, f"{damage[0]} is damaged ({damage[1]})"))
                continue
            found = str(checkpoint)
            break
        instead = (
            f"resuming from the previous complete checkpoint, {found}"
            if found is not None
            else "no complete checkpoint is left, so the run trains from scratch"
        )
        for checkpoint, reason in passed_over:
            logger.warning("Ignoring %s: %s; %s.", checkpoint, reason, instead)
        return found


# --- A finished run, read once --------------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """A finished run's output folder as its readers (``ser-hf compare``, sweeps, the card, ``ser-hf push``) take it:
    typed records, read once by :func:`read_run`.

    Attributes:
        run_dir (`Path`): the folder (a model's, or the root of a k-fold run).
        report (`RunReport`, *optional*): its ``metrics.json``; `None` at the root of a k-fold run.
        run_config (`RunConfig`, *optional*): ``run_config.json`` (a k-fold root's is its first fold's); `None` when
            the run has none.
        config, feature_extractor (`dict`, *optional*): the exported model's ``config.json`` and
            ``preprocessor_config.json``.
        summary (`FoldSummary`, *optional*): the k-fold ``summary.json`` (for a fold, its parent's).
        folds (`list[tuple[str, RunReport]]`): a k-fold root's ``(folder, metrics.json)`` of each finished fold.
        eval_reports (`list[tuple[str, EvalReport]]`): ``(path relative to run_dir, eval_report.json)`` of every
            report ``ser-hf evaluate`` wrote into ``reports/``.
    """

    run_dir: Path
    report: Optional[RunReport]
    run_config: Optional[RunConfig]
    config: Optional[dict[str, Any]] = None
    feature_extractor: Optional[dict[str, Any]] = None
    summary: Optional[FoldSummary] = None
    folds: list[tuple[str, RunReport]] = dataclasses.field(default_factory=list)
    eval_reports: list[tuple[str, EvalReport]] = dataclasses.field(default_factory=list)

    @property
    def is_kfold_root(self) -> bool:
        return self.report is None

    @property
    def reports(self) -> list[RunReport]:
        """The report of every finished split: the run's own, or each fold's."""
        return [self.report] if self.report is not None else [report for _, report in self.folds]

    @property
    def model_dir(self) -> Path:
        """The folder of the run's model files and configuration: its own, or a k-fold root's first fold."""
        return self.run_dir / self.folds[0][0] if self.is_kfold_root and self.folds else self.run_dir

    @property
    def model_type(self) -> Optional[str]:
        """The model kind the run trained (the recipe's ``model_type``), from ``run_config.json`` or the saved
        ``config.json``."""
        if self.run_config is not None and self.run_config.model_type is not None:
            return self.run_config.model_type
        return (self.config or {}).get("model_type")


def read_run(run_dir: str | os.PathLike) -> RunRecord:
    """Read a finished run's output folder (one split, or the root of a k-fold run) into a :class:`RunRecord`,
    validating its records; a folder with no finished split is an error naming what is missing."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise FileNotFoundError(
            f"Run directory {run_dir} does not exist." if not run.path.exists() else f"{run_dir} is not a folder."
        )
    report = run.read_report()
    summary_dir = run
    folds: list[tuple[str, RunReport]] = []
    if report is None:
        fold_dirs = run.fold_dirs()
        if not fold_dirs:
            raise FileNotFoundError(
                f"{run_dir} holds no finished ser-hf run: neither {METRICS_FILE} nor fold-*/{METRICS_FILE} (a "
                "training run writes them when it finishes)."
            )
        folds = [(fold.path.name, fold.read_report()) for fold in fold_dirs]
        model_dir = fold_dirs[0]
    else:
        model_dir = run
        if not run.has(SUMMARY_FILE) and run.is_fold:
            summary_dir = RunDir(run.path.parent)
    summary = summary_dir.read_summary()
    return RunRecord(
        run_dir=run.path,
        report=report,
        run_config=model_dir.read_config(),
        config=model_dir.read_model_config(),
        feature_extractor=model_dir.read_feature_extractor_config(),
        summary=None if summary is None else FoldSummary.from_dict(summary, where=f"{summary_dir}/{SUMMARY_FILE}"),
        folds=folds,
        eval_reports=[
            (path, EvalReport.from_dict(report, where=f"{run}/{path}/{EVAL_REPORT_JSON}"))
            for path, report in run.eval_reports()
        ],
    )


# --- What a run wrote ----------------------------------------------------------------------------------------------


def _matches(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _remote_code_files() -> set[str]:
    """The model modules ``register_for_auto_class`` copies next to a saved model."""
    models = Path(__file__).parent / "models"
    return {path.name for path in models.glob("*.py") if path.name != "__init__.py"}


def is_run_output(name: str) -> bool:
    """Whether an entry of a run folder (by name) is one that a ser-hf run writes."""
    subfolders = _FOLDER_KINDS["run"][1]
    return (
        _matches(name, RUN_OUTPUT_PATTERNS)
        or _matches(name, WHOLE_FOLDER_PATTERNS)
        or _matches(name, subfolders)
        or name in _remote_code_files()
    )


def check_output_dir(output_dir: str | os.PathLike, data_dirs: Sequence[str | os.PathLike] = ()) -> None:
    """Refuse an ``output_dir`` that is (or contains) one of the recipe's data directories, or that already holds
    files no ser-hf run wrote (a run would mix its outputs with them, and ``overwrite_output_dir`` would be asked
    to remove them). An empty or missing folder, and a previous run's folder, are fine."""
    folder = Path(output_dir).expanduser().resolve()
    for data_dir in data_dirs:
        relation = output_relation(folder, data_dir)
        if relation in ("is", "contains"):  # an output inside a corpus folder is left to the corpus' own check
            raise RecipeError(
                f"output_dir {str(output_dir)!r} {relation} the data "
                f"directory {str(data_dir)!r}: a run writes its outputs there. Choose another "
                "output_dir (outputs/NAME, say)."
            )
    if not folder.is_dir() or RunDir(folder).is_run_folder():
        return
    foreign = sorted(
        entry.name + ("/" if entry.is_dir() else "") for entry in folder.iterdir() if not is_run_output(entry.name)
    )
    if foreign:
        listing = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RecipeError(
            f"output_dir {str(output_dir)!r} already holds files that no ser-hf run wrote ({listing}). "
            "Choose a new or empty folder: ser-hf never writes among, or deletes, a user's files."
        )


def remove_run_outputs(folder: Path, kind: str = "run") -> list[str]:
    """Delete what a ser-hf run wrote in ``folder`` and keep everything else, returning the names kept: its own
    files (by name), checkpoints and staging folders whole, and inside ``fold-N``, ``reports`` and ``runs`` only
    their own files again (a folder left empty is removed). Links are removed, never followed."""
    patterns, subfolders = _FOLDER_KINDS[kind]
    if kind == "run":
        patterns = (*patterns, *_remote_code_files())
    kept = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if entry.is_dir() and not entry.is_symlink():
            inner_kind = next((k for pattern, k in subfolders.items() if fnmatch.fnmatchcase(name, pattern)), None)
            if kind == "run" and _matches(name, WHOLE_FOLDER_PATTERNS):
                shutil.rmtree(entry)
            elif inner_kind is None:
                kept.append(f"{name}/")
            else:
                kept += [f"{name}/{inner}" for inner in remove_run_outputs(entry, inner_kind)]
                if not any(entry.iterdir()):
                    entry.rmdir()
        elif name in (LOCK_FILE, HOLDER_FILE):
            continue  # the lock of the run that is removing the outputs
        elif _matches(name, patterns):
            entry.unlink()
        else:
            kept.append(name)
    return kept


# --- The lock -----------------------------------------------------------------------------------------------------


class OutputDirInUseError(RecipeError):
    """Another training holds the output folder's lock."""


def _holder_description(folder: Path) -> str:
    try:
        holder = json.loads((folder / HOLDER_FILE).read_text())
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["started"]))
        return f"process {holder['pid']} of {holder['user']} on {holder['host']}, started {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def hold_output_dir(output_dir: str | os.PathLike, enabled: bool = True) -> Iterator[None]:
    """Hold ``output_dir``'s lock for the whole run, so that two trainings never write one folder: the second stops
    at once with :class:`OutputDirInUseError` naming the folder and the holder. `enabled` is false on the processes
    of a distributed run other than the main one (which alone writes the folder)."""
    if not enabled:
        yield
        return
    folder = Path(output_dir)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise OutputDirInUseError(
            f"output_dir {str(output_dir)!r} is in use by another training ({_holder_description(folder)}). Wait "
            "for it to finish, or choose another output_dir."
        ) from None
    holder = folder / HOLDER_FILE
    try:
        write_text_atomic(
            holder,
            json.dumps(
                {"pid": os.getpid(), "host": socket.gethostname(), "user": getpass.getuser(), "started": time.time()}
            )
            + "\n",
        )
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()  # the lock file stays: removing it would let two processes lock different files...
        if created and [entry.name for entry in folder.iterdir()] == [LOCK_FILE]:
            # ...except in a folder this run created and left empty (it stopped on bad input): leave no trace.
            (folder / LOCK_FILE).unlink(missing_ok=True)
            folder.rmdir()


# --- Checkpoints --------------------------------------------------------------------------------------------------


def damaged_trainer_state(checkpoint: Path) -> Optional[tuple[Path, str]]:
    """``checkpoint/trainer_state.json`` with the reason, when Trainer could not resume from it as it is: not valid
    JSON (Trainer would stop on its JSONDecodeError, naming no file), or a ``global_step`` that is not the
    checkpoint's own step N, or past the ``max_steps`` it records (an edited state: Trainer would take the run for
    finished and train no further, without a word); `None` when it fits."""
    path = checkpoint / TRAINER_STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return path, f"not valid JSON: {error}"
    if not isinstance(state, dict):
        return path, f"not a trainer state (a JSON {type(state).__name__})"
    step, max_steps = state.get("global_step"), state.get("max_steps")
    if step is None:
        return None
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return path, f"its global_step is {step!r}, not a step number"
    if isinstance(max_steps, int) and not isinstance(max_steps, bool) and 0 < max_steps < step:
        return path, f"its global_step {step} is past the run's max_steps {max_steps}"
    if step != _checkpoint_step(checkpoint):
        return path, f"its global_step {step} is not the step of {checkpoint.name}"
    return None


def damaged_file(folder: Path) -> Optional[tuple[Path, str]]:
    """The first file of a saved model or checkpoint that cannot be read whole (a truncated ``*.safetensors``, or a
    ``*.pt``/``*.pth``/``*.bin`` zip archive without its central directory), or a ``*.pt``/``*.pth`` (the optimizer,
    scheduler and random states) that Trainer's ``torch.load(..., weights_only=True)`` would refuse with an
    ``UnpicklingError`` (a pickle holding more than tensors and numbers: perhaps code), with the reason; `None` if all
    read. The pickles are read as Trainer reads them, which never runs their code; their tensors are memory-mapped,
    not loaded."""
    from safetensors import safe_open

    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(path, framework="pt") as weights:
                for name in weights.keys():
                    weights.get_slice(name)
        except Exception as error:  # safetensors raises SafetensorError, OSError, or ValueError on a bad header
            return path, f"{type(error).__name__}: {error}"
    for path in sorted([*folder.glob("*.pt"), *folder.glob("*.pth"), *folder.glob("*.bin")]):
        try:
            with zipfile.ZipFile(path) as archive:
                archive.infolist()
        except (zipfile.BadZipFile, OSError) as error:
            return path, f"not a complete archive ({error})"
    for path in sorted([*folder.glob("*.pt"), *folder.glob("*.pth")]):
        refusal = _refused_pickle(path)
        if refusal is not None:
            return path, refusal
    return None


def _refused_pickle(path: Path) -> Optional[str]:
    """Why ``torch.load(path, weights_only=True)`` (with the numpy types Trainer allows for random states) fails, or
    `None` when it loads."""
    import torch
    from transformers.trainer_pt_utils import safe_globals

    try:
        with safe_globals():
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001 - UnpicklingError for a refused global; anything else is damage too
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"torch refuses to unpickle it: {type(error).__name__}: {reason}".rstrip(": ")
    return None


__all__ = [
    "CARD_FILE",
    "CLIP_FINGERPRINT_FILE",
    "CONFUSION_MATRIX_PNG",
    "CROSS_CORPUS_JSON",
    "CROSS_CORPUS_MARKDOWN",
    "CROSS_CORPUS_PNG",
    "EVAL_REPORT_JSON",
    "EVAL_REPORT_MARKDOWN",
    "FEATURE_EXTRACTOR_FILE",
    "FOLD_FOLDER",
    "HOLDER_FILE",
    "LOCK_FILE",
    "METRICS_FILE",
    "MODEL_CONFIG_FILE",
    "OutputDirInUseError",
    "RECIPE_FILE",
    "REPORTS_DIR",
    "REPORT_MARKDOWN",
    "REPORT_PATTERNS",
    "RUN_CONFIG_FILE",
    "RUN_OUTPUT_PATTERNS",
    "RunDir",
    "RunRecord",
    "SELF_TRAINING_ROUND_FOLDER",
    "SOUP_MEMBER_FOLDER",
    "SPLIT_CONFUSION_MATRIX_PNG",
    "SPLIT_RELIABILITY_DIAGRAM_PNG",
    "SUMMARY_FILE",
    "SUMMARY_MARKDOWN",
    "TRAINER_STATE_FILE",
    "TRAINING_ARGS_FILE",
    "TRAINING_CURVES_PNG",
    "WHOLE_FOLDER_PATTERNS",
    "check_output_dir",
    "checkpoint_step",
    "damaged_file",
    "damaged_trainer_state",
    "fold_folder",
    "hold_output_dir",
    "is_run_output",
    "read_run",
    "remove_run_outputs",
    "split_confusion_matrix_png",
    "split_reliability_diagram_png",
]
