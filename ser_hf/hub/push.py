"""Publishing a finished run: its output folder (weights, config, feature extractor, the model's code, the card
rendered for the repository, metrics, plots, ``reports/`` and the recipe) pushed to a Hub repository in one commit,
and a folder of ``ser-hf evaluate`` reports pushed to a repository of its own.

The Hub token is never an argument of a command line, a log line, a card or a file: it comes from
``huggingface_hub``'s usual sources (``HF_TOKEN``, the token saved by ``hf auth login``) or the ``hub_token`` recipe
key, and a push refuses to upload a text file that contains it. A failed push changes no local file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
from pathlib import Path
from typing import Any, Iterator, Optional

from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, get_token
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

from ..atomic_files import atomic_path
from ..hub_timeouts import (
    HUB_TIMEOUT_ENV,
    answer_deadlines,
    hub_timeout,
    is_timeout,
    transport_errors,
    use_hub_timeout,
)
from ..run_folder import (
    CARD_FILE,
    CLIP_FINGERPRINT_FILE,
    CROSS_CORPUS_JSON,
    EVAL_REPORT_JSON,
    LOCK_FILE,
    RunDir,
)
from ..run_record import read_adaptation_record
from .card import SERCardData, create_model_card
from .report_table import default_path_in_repo, folder_rows, reports_dataset_card, table_file, table_lines

logger = logging.getLogger(__name__)

#: What a push leaves out of a run's folder: Trainer checkpoints, half-written files, the lock, and the record of
#: the clips each split held (for resuming on this machine only).
PUSH_IGNORE_PATTERNS = [
    CLIP_FINGERPRINT_FILE,
    f"**/{CLIP_FINGERPRINT_FILE}",
    "checkpoint-*",
    "checkpoint-*/**",
    "**/checkpoint-*/**",
    "*.partial",
    "**/*.partial",
    "*.partial/**",
    "**/*.partial/**",
    "runs/**",
    "**/runs/**",
    f"{LOCK_FILE}*",
    f"**/{LOCK_FILE}*",
]
#: Text files a push checks for the token before uploading anything.
_TEXT_SUFFIXES = {".json", ".md", ".yaml", ".yml", ".txt", ".py", ".csv", ".cfg", ".toml", ".log"}


def _refuse_files_with_token(folder: Path, token: Optional[str]) -> None:
    """Stop a push before anything is uploaded when a text file of ``folder`` contains the token."""
    if not token:
        return
    needle = token.encode()
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).as_posix()
        if (
            not path.is_file()
            or path.suffix.lower() not in _TEXT_SUFFIXES
            or relative.startswith("checkpoint-")
            or "/checkpoint-" in relative
        ):
            continue
        if needle in path.read_bytes():
            raise ValueError(
                f"{path} contains your Hugging Face token; remove it before pushing (nothing was uploaded)."
            )


class HubPushError(ConnectionError):
    """A push that did not reach the Hub (no connection, a timeout); the local folder is unchanged."""


def _push_operations(folder: Path, card: Optional[ModelCard], prefix: str = "") -> list[CommitOperationAdd]:
    """One add per file of ``folder`` that a push publishes (see :data:`PUSH_IGNORE_PATTERNS`), under ``prefix`` in
    the repository, with ``card`` (when given) as ``README.md`` in place of the folder's."""
    files = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    kept = filter_repo_objects(files, ignore_patterns=[*PUSH_IGNORE_PATTERNS, *DEFAULT_IGNORE_PATTERNS])
    operations = [
        CommitOperationAdd(path_in_repo=f"{prefix}/{name}" if prefix else name, path_or_fileobj=str(folder / name))
        for name in kept
        if card is None or name != CARD_FILE
    ]
    if card is not None:
        operations.append(CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=str(card).encode("utf-8")))
    return operations


@contextlib.contextmanager
def _explained_push_errors(folder: Path, endpoint: str, retry: str) -> Iterator[None]:
    """Errors of a push say that ``folder`` is unchanged and how to push again (``retry``)."""
    advice = f"Nothing in {folder} was changed; to try again, run {retry}."
    try:
        with answer_deadlines():  # each answer whole within SER_HF_HUB_TIMEOUT, not only each read of it
            yield
    except HfHubHTTPError as error:  # the Hub answered with an error: keep its type (RepositoryNotFoundError, ...)
        error.append_to_message(f"\n{advice}")
        raise
    except transport_errors() as error:
        if is_timeout(error):
            raise HubPushError(
                f"The Hub at {endpoint} did not answer within {hub_timeout():g} s while pushing "
                f"{folder} (set {HUB_TIMEOUT_ENV} to wait longer). {advice}"
            ) from error
        raise HubPushError(f"Could not reach the Hub at {endpoint} to push {folder}: {error}. {advice}") from error


def push_to_hub(
    run_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: Optional[bool] = None,
    token: Optional[str] = None,
    revision: Optional[str] = None,
    commit_message: Optional[str] = None,
    create_card: bool = True,
    license: Optional[str] = None,
    repo_type: str = "model",
    endpoint: Optional[str] = None,
) -> Any:
    """Publish a finished run's output folder to a Hub repository: the weights (safetensors), config and feature
    extractor, the model's code (``auto_map``) for baselines, the card (rendered again for ``repo_id``), the metrics,
    plots, ``reports/`` and the recipe, in one commit. Checkpoints are left out.

    A push that fails (the Hub unreachable, silent for ``SER_HF_HUB_TIMEOUT`` seconds, or answering with an error)
    changes no file of ``run_dir`` and commits nothing: its error says so and how to push again.

    Args:
        run_dir (`str` or `os.PathLike`): a finished run's output folder.
        repo_id (`str`): ``namespace/name`` (or ``name``, in the token owner's namespace).
        private (`bool`, *optional*): create the repository private; an existing one keeps its visibility.
        token (`str`, *optional*): a Hub token; defaults to ``huggingface_hub``'s (``HF_TOKEN``, ``hf auth login``).
        revision (`str`, *optional*): a branch to push to (created from ``main`` when missing).
        create_card (`bool`, *optional*, defaults to `True`): push a ``README.md`` rendered for ``repo_id``, and
            write it to ``run_dir`` once the push succeeded.
        license (`str`, *optional*): the card's licence: a Hub licence id, or ``other`` for one whose text is in the
            run folder's ``LICENSE.md`` (or ``LICENSE``, ``LICENSE.txt``), pushed with it; defaults to the training
            corpora's (``unknown`` for a corpus ser-hf does not know).
        endpoint (`str`, *optional*): a Hub other than ``HF_ENDPOINT``'s.

    Returns:
        `huggingface_hub.CommitInfo`: the commit, with its URL.
    """
    run_dir = Path(run_dir)
    # A folder that is not there is answered before the Hub is asked anything (with or without a card).
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} is not a folder: pass the output folder of a finished run.")
    use_hub_timeout()
    # Hand-edited records (a proportion out of range, a string for a number) are refused before anything is
    # published, with or without a card: metrics.json and run_config.json are pushed as they are.
    RunDir(run_dir).check_records()
    read_adaptation_record(run_dir)  # an adapted model's record, which the card reads: damaged, refused here
    if create_card:
        # A clear error for a folder that holds no finished run, or a licence `other` without its text.
        SERCardData.read(run_dir, license=license).card_license()
    _refuse_files_with_token(run_dir, token or get_token())
    api = HfApi(endpoint=endpoint, token=token)
    retry = (
        "`"
        + shlex.join(
            [
                "ser-hf",
                "push",
                str(run_dir),
                "--repo-id",
                repo_id,
                *(["--private"] if private else []),
                *(["--revision", revision] if revision else []),
                *(["--commit-message", commit_message] if commit_message else []),
                *(["--license", license] if license else []),
                *([] if create_card else ["--no-card"]),
            ]
        )
        + "`"
    )
    # The folder is only read until the commit has landed: the card for the repository goes up from memory and
    # replaces README.md once the push succeeded, so a failed push leaves every file as it was.
    with _explained_push_errors(run_dir, api.endpoint, retry):
        repo_id = api.create_repo(repo_id, private=private, repo_type=repo_type, exist_ok=True).repo_id
        card = create_model_card(run_dir, model_id=repo_id, license=license) if create_card else None
        if revision is not None and revision != "main":
            api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
        commit = api.create_commit(
            repo_id=repo_id,
            operations=_push_operations(run_dir, card),
            repo_type=repo_type,
            revision=revision,
            commit_message=commit_message or f"Upload {run_dir.resolve().name} with ser-hf",
        )
    if card is not None:
        with atomic_path(run_dir / CARD_FILE) as partial:
            card.save(partial)
    logger.info("Pushed %s to %s", run_dir, commit.commit_url)
    return commit


def push_reports_to_hub(
    report_dir: str | os.PathLike,
    repo_id: str,
    *,
    repo_type: str = "dataset",
    path_in_repo: Optional[str] = None,
    private: Optional[bool] = None,
    token: Optional[str] = None,
    commit_message: Optional[str] = None,
    endpoint: Optional[str] = None,
) -> Any:
    """Upload a folder of ``ser-hf evaluate`` reports to a repository of its own (a dataset repository by default),
    under ``path_in_repo`` (by default ``<model>/<folder>``, or ``reports/<folder>`` in a model repository, where the
    model's card lists it once ``ser-hf push`` renders the card again), in one commit. A dataset repository also
    gets the reports' rows in ``data/`` and a card that makes ``datasets.load_dataset(repo_id)`` load every report
    pushed there as one table (see :mod:`ser_hf.hub.report_table`). A failed upload says how to run it again."""
    report_dir = Path(report_dir)
    use_hub_timeout()
    if not any(report_dir.glob(f"**/{EVAL_REPORT_JSON}")) and not any(report_dir.glob(f"**/{CROSS_CORPUS_JSON}")):
        raise FileNotFoundError(f"{report_dir} holds no {EVAL_REPORT_JSON} (nor {CROSS_CORPUS_JSON}) to push.")
    _refuse_files_with_token(report_dir, token or get_token())
    api = HfApi(endpoint=endpoint, token=token)
    path_in_repo = path_in_repo if path_in_repo is not None else default_path_in_repo(report_dir, repo_type)
    retry = (
        "`"
        + shlex.join(
            [
                "hf",
                "upload",
                repo_id,
                str(report_dir),
                path_in_repo,
                "--repo-type",
                repo_type,
                *(["--private"] if private else []),
            ]
        )
        + "`"
    )
    with _explained_push_errors(report_dir, api.endpoint, retry):
        url = api.create_repo(repo_id, private=private, repo_type=repo_type, exist_ok=True)
        operations = _push_operations(report_dir, None, prefix=path_in_repo.strip("/"))
        rows = folder_rows(report_dir, path_in_repo.strip("/"))
        if repo_type == "dataset" and rows:
            operations += [
                CommitOperationAdd(path_in_repo=table_file(path_in_repo), path_or_fileobj=table_lines(rows)),
                CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=str(reports_dataset_card()).encode()),
            ]
        commit = api.create_commit(
            repo_id=url.repo_id,
            operations=operations,
            repo_type=repo_type,
            commit_message=commit_message or f"Add evaluation reports {report_dir.name}",
        )
    logger.info("Pushed %s to %s", report_dir, commit.commit_url)
    return commit


__all__ = ["HubPushError", "PUSH_IGNORE_PATTERNS", "push_reports_to_hub", "push_to_hub"]
