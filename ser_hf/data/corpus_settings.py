"""What a run's corpus settings get wrong, read from the settings and the corpora's file names alone (nothing decoded,
no ``datasets`` or torch imported): the loader options of each corpus (``corpus_options``), two corpora under one name,
the corpora that only train and the corpora's weights, an option a corpus' loader does not take, a folder corpus'
regex that matches no file, a named corpus' folder of other files, speakers the lists name that no file has. They are
corpus facts, so they live with the corpora; the recipe runs them on its values (``ser_hf.recipe``'s data section,
and its checks before torch and transformers import), and the loaders and experiments read
:func:`options_of_each_corpus`.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Optional, Sequence

from ..errors import RecipeError
from .audio_files import walk_audio_files
from .constants import NAMED_CORPORA, canonical_corpus_name
from .split_settings import SPEAKER_LISTS


def options_of_each_corpus(corpus: Sequence[str], corpus_options: Any) -> list[dict[str, Any]]:
    """The loader options of each corpus of a recipe, in ``corpus`` order, from its ``corpus_options``: one mapping
    (one corpus), a mapping of corpus names to mappings, or a list of mappings, one per corpus (the only way to tell
    apart two corpora read by the same loader, such as two folder corpora)."""
    corpus = list(corpus)
    if not corpus_options:
        return [{} for _ in corpus]
    if isinstance(corpus_options, (list, tuple)):
        if len(corpus_options) != len(corpus) or not all(isinstance(o, Mapping) for o in corpus_options):
            raise RecipeError(
                f"corpus_options as a list needs one mapping per corpus ({len(corpus)}: {', '.join(corpus)}), in "
                f"the same order; got {len(corpus_options)} item(s)."
            )
        return [dict(options) for options in corpus_options]
    if not isinstance(corpus_options, Mapping):
        raise RecipeError(f"corpus_options must be a mapping or a list of mappings, got {corpus_options!r}.")
    by_name = all(key in corpus and isinstance(value, Mapping) for key, value in corpus_options.items())
    if by_name:
        shared = sorted({name for name in corpus if corpus.count(name) > 1 and name in corpus_options})
        if shared:
            raise RecipeError(
                f"corpus_options names {', '.join(shared)}, which the recipe reads more than once: give "
                "corpus_options as a list, one mapping per corpus in corpus order (e.g. [{corpus_name: a}, "
                "{corpus_name: b}])."
            )
        return [dict(corpus_options.get(name, {})) for name in corpus]
    if len(corpus) > 1:
        raise RecipeError(
            f"corpus_options with several corpora must map corpus names ({', '.join(corpus)}) to their options, or "
            f"list one mapping per corpus; got keys {sorted(corpus_options)}."
        )
    return [dict(corpus_options)]


def check_corpora(corpus: Sequence[str], data_dirs: Sequence[str], corpus_options: Any) -> None:
    """Raise :class:`~ser_hf.errors.RecipeError` unless a run names a corpus at least, one data directory per corpus,
    loader options it can give each corpus (:func:`options_of_each_corpus`) and no two corpora under one name
    (:func:`corpus_name_problem`)."""
    if not corpus:
        raise RecipeError("corpus is required: the corpus (or corpora) to train on, e.g. corpus: ravdess.")
    if len(corpus) != len(data_dirs):
        raise RecipeError(
            f"Give one data_dir per corpus: {len(corpus)} corpora ({', '.join(corpus)}) and {len(data_dirs)} data_dir."
        )
    options_of_each_corpus(corpus, corpus_options)  # one mapping per corpus, or the error naming why
    problem = corpus_name_problem({"corpus": corpus, "data_dir": data_dirs, "corpus_options": corpus_options})
    if problem:
        raise RecipeError(problem)


def corpus_name_problem(values: Mapping[str, Any]) -> Optional[str]:
    """Two corpora of a recipe under one name (two folder corpora named after folders of one name, or the same
    ``corpus_name``) would merge their speakers (speaker ``01`` of each becoming one): what to do, or `None`."""
    corpus, data_dirs = values.get("corpus"), values.get("data_dir")
    corpus = [corpus] if isinstance(corpus, str) else list(corpus or [])
    data_dirs = [data_dirs] if isinstance(data_dirs, (str, os.PathLike)) else list(data_dirs or [])
    if len(corpus) < 2 or len(corpus) != len(data_dirs):
        return None  # one corpus, or a count mismatch the parser names
    try:
        options = options_of_each_corpus(corpus, values.get("corpus_options"))
    except RecipeError as error:
        return str(error)
    names = []
    for loader, data_dir, corpus_options in zip(corpus, data_dirs, options):
        name = corpus_options.get("corpus_name")
        if not name and str(loader).lower() == "folder":
            # As ser_hf.data.corpora.folder.folder_corpus_name names it.
            name = os.path.basename(os.path.realpath(os.path.expanduser(str(data_dir)))) or "folder"
        names.append(str(name or loader).lower())
    twice = sorted({name for name in names if names.count(name) > 1})
    if not twice:
        return None
    return (
        f"corpus: two corpora would both be called {', '.join(map(repr, twice))} and merge their speakers: give "
        "each a distinct corpus_name, with corpus_options as a list, one mapping per corpus in corpus order (e.g. "
        "corpus_options: [{corpus_name: clinic_a}, {corpus_name: clinic_b}])."
    )


#: How long one regex match of a file name may take in these checks; a longer one is left to the corpus loader (which
#: names a catastrophic pattern itself).
_MATCH_SECONDS = 1.0


def _group_of(pattern, match, group: str) -> str:
    return match.group(group) if group in pattern.groupindex else match.group(1)


def _folder_corpus_speakers(data_dir: str, corpus_options: Mapping[str, Any]) -> tuple[Optional[set[str]], list[str]]:
    """The speakers a folder corpus' file names give (`None` where this check cannot read them: a CSV corpus, no
    ``speaker_regex``, a pattern the loader must name) and what its regexes get wrong: a ``label_regex`` or
    ``speaker_regex`` that matches no file."""
    import regex

    if corpus_options.get("csv_path"):
        return None, []
    # As the folder corpus searches its regexes: each file's path relative to the folder, ``/`` between folders.
    files = [path.relative_to(data_dir).as_posix() for path in walk_audio_files(data_dir)[0]]
    if not files:
        return None, [f"data_dir: {data_dir!r} holds no audio file."]
    problems: list[str] = []
    found: dict[str, set[str]] = {}
    for option, group in (("label_regex", "label"), ("speaker_regex", "speaker")):
        pattern_text = corpus_options.get(option)
        if not pattern_text:
            continue
        try:
            pattern = regex.compile(pattern_text)
            matches = [pattern.search(name, timeout=_MATCH_SECONDS) for name in files]
        except (regex.error, TimeoutError):
            continue  # the loader names an invalid or catastrophic pattern
        if pattern.groups == 0:
            continue
        found[group] = {_group_of(pattern, match, group) for match in matches if match is not None} - {""}
        if not found[group]:
            problems.append(
                f"corpus_options.{option} '{pattern_text}' matches no file of {data_dir} (such as {files[0]!r}; "
                "it is searched in each file's path relative to the folder)."
            )
    return found.get("speaker") or None, problems


#: How many of a named corpus' files whose names its parser refuses a problem shows.
_INVALID_SHOWN = 3


def _named_corpus_speakers(name: str, data_dir: str, strict: bool) -> tuple[Optional[set[str]], list[str]]:
    """The speakers a named corpus' file names give (`None` where it has no file, or no file's name parses) and what
    they get wrong: a folder none of whose files is named as the corpus names its files, and, unless ``skip_invalid``
    (``strict`` false), files among them the corpus' parser refuses (the loader would stop on each). An empty folder
    and the side tables some corpora read (CREMA-D's ``VideoDemographics.csv``, nEMO's ``data.tsv``) are left to the
    loader."""
    from .corpora.named import read_file_names

    read = read_file_names(name, data_dir)
    spec, root = read.spec, os.path.realpath(data_dir)
    if not read.files:
        return None, []  # the loader names it; an empty folder also stands in for a recipe's in tests/recipe
    shown = [f"{os.path.relpath(error.path, root)!r}: {error.problem}" for error in read.invalid[:_INVALID_SHOWN]]
    if len(read.invalid) == read.files:
        return None, [
            f"data_dir: no file of {data_dir!r} is named as {spec.full_name} names its files (such as "
            f"{spec.example_file}); the first of its {read.files} audio file(s), {shown[0]}. Point data_dir at a copy "
            f"of {spec.full_name}, or read other clips as corpus: folder."
        ]
    problems = []
    if read.invalid and strict:
        more = f" and {len(read.invalid) - _INVALID_SHOWN} more" if len(read.invalid) > _INVALID_SHOWN else ""
        problems.append(
            f"data_dir: {len(read.invalid)} of the {read.files} audio files of {data_dir!r} are not {spec.full_name} "
            f"clips ({'; '.join(shown)}{more}): move them out of the folder, or leave them out with skip_invalid: "
            "true."
        )
    return set(read.speakers), problems


def _is_known_speaker(speaker: Any, speakers: set[str]) -> bool:
    """Whether a listed speaker is one of ``speakers``. A number may have been written otherwise: the command line's
    values are read as YAML, where ``--test_speakers 01`` is 1 and ``010`` is 8 (the recipe parser keeps "01"), so a
    number is known when a speaker's digits read as it."""
    if str(speaker) in speakers:
        return True
    if isinstance(speaker, bool) or not isinstance(speaker, (int, float)):
        return False
    digits = [known for known in speakers if known.isascii() and known.isdigit()]
    octal = [known for known in digits if known.startswith("0") and set(known) <= set("01234567")]
    return speaker in {int(known) for known in digits} | {int(known, 8) for known in octal}


def corpus_problems(values: Mapping[str, Any]) -> list[str]:
    """What a recipe's corpora and speaker lists get wrong, read from their options and file names alone (nothing
    decoded, no ``datasets``): an option the corpus' loader does not take; a folder corpus' ``label_regex`` or
    ``speaker_regex`` that matches no file; a named corpus' folder none of whose file names its parser reads, or some
    of them without ``skip_invalid``; and, with the speaker protocol, speakers the lists name that no file has (checked
    where every corpus' speakers come from its file names, ``corpus:speaker`` when several corpora merge). Anything
    these checks cannot read (a CSV corpus, a pattern that times out, an empty folder, CREMA-D's and nEMO's side
    tables) is left to the loader."""
    from .corpora.named import corpus_options_problem

    corpus, data_dirs = values.get("corpus"), values.get("data_dir")
    corpus = [corpus] if isinstance(corpus, str) else list(corpus or [])
    data_dirs = [data_dirs] if isinstance(data_dirs, (str, os.PathLike)) else list(data_dirs or [])
    if not corpus or len(corpus) != len(data_dirs):
        return []
    try:
        options = options_of_each_corpus(corpus, values.get("corpus_options"))
    except RecipeError:
        return []  # corpus_name_problem names it
    skip_invalid = values.get("skip_invalid")
    strict = skip_invalid in (None, False) or str(skip_invalid).lower() in ("false", "no", "0")
    problems: list[str] = []
    speakers: Optional[set[str]] = set()
    for loader, data_dir, corpus_options in zip(corpus, data_dirs, options):
        data_dir = os.path.expanduser(str(data_dir))
        key = canonical_corpus_name(str(loader))
        if key in (*NAMED_CORPORA, "folder") and (problem := corpus_options_problem(key, map(str, corpus_options))):
            problems.append(problem)
        if not os.path.isdir(data_dir) or key not in (*NAMED_CORPORA, "folder"):
            speakers = None  # a missing folder or an unknown corpus, which other checks name
            continue
        if key == "folder":
            found, corpus_problems = _folder_corpus_speakers(data_dir, corpus_options)
            name = corpus_options.get("corpus_name") or os.path.basename(os.path.realpath(data_dir)) or "folder"
        else:
            found, corpus_problems = _named_corpus_speakers(key, data_dir, strict)
            name = key
        problems += corpus_problems
        if found is None or speakers is None:
            speakers = None
            continue
        # As merge_corpora names them: a corpus' speakers are prefixed with its name once several merge.
        speakers |= found if len(corpus) == 1 else {s if ":" in s else f"{name}:{s}" for s in found}
    if not speakers or values.get("split_protocol", "speaker") != "speaker":
        return problems  # other protocols do not read the lists
    where = "the folder's file names (its" if len(corpus) == 1 else "the folders' file names (their"
    for key in SPEAKER_LISTS:
        listed = values.get(key)
        listed = [listed] if isinstance(listed, (str, int, float)) else list(listed or [])
        unknown = [str(speaker) for speaker in listed if not _is_known_speaker(speaker, speakers)]
        if unknown:
            problems.append(
                f"{key}: speaker(s) {unknown} are not in {where} speakers: "
                f"{sorted(speakers)[:12]}{' ...' if len(speakers) > 12 else ''})."
            )
    return problems


def train_only_corpora(names: Optional[Sequence[Any]], corpora: Sequence[str]) -> Optional[list[str]]:
    """The corpora of `names` (a list, as the recipe gives it) that only train, checked against the run's `corpora`:
    each must be one of them, and one at least must be left to validate and test on; `None` when none is named."""
    if not names:
        return None
    names = [str(name) for name in names]
    unknown = [name for name in names if name not in corpora]
    if unknown:
        raise RecipeError(
            f"train_only_corpora names {', '.join(map(repr, unknown))}, which the recipe does not train on (corpus: "
            f"{', '.join(corpora)})."
        )
    if set(names) >= set(corpora):
        raise RecipeError(
            f"train_only_corpora lists every corpus of the recipe ({', '.join(corpora)}): none is left to validate "
            "or test on. Leave at least one out."
        )
    return names


def corpus_weights(weights: Optional[Mapping[str, Any]], corpora: Sequence[str]) -> Optional[dict[str, float]]:
    """`weights` (a recipe's ``corpus_weights`` mapping) keyed as the corpora's ``corpus`` column holds them: names
    matched to ``corpus`` as ``load_corpus`` matches them (case, aliases: ``RAVDESS``, ``CREMA-D``), every corpus of
    the recipe given a weight (1 where none is named). The values are kept as written;
    :func:`~ser_hf.training.trainer.corpus_sampling_weights` scales them by the largest before dividing, so
    ``1.0e+308`` weighs as ``1``."""
    if weights is None:
        return None
    names = list(dict.fromkeys(canonical_corpus_name(corpus) for corpus in corpora))
    given: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    unknown = []
    for name, weight in weights.items():
        key = canonical_corpus_name(str(name))
        if key not in names:
            unknown.append(str(name))
        elif key in given:
            raise RecipeError(
                f"corpus_weights names corpus {key!r} twice ({spelled[key]!r} and {str(name)!r}): give it one weight."
            )
        else:
            given[key], spelled[key] = weight, str(name)
    if unknown:
        raise RecipeError(
            f"corpus_weights names {', '.join(map(repr, sorted(unknown)))}, which the recipe does not train on "
            f"(corpus: {', '.join(corpora)})."
        )
    bad = {spelled[key]: weight for key, weight in given.items() if not _is_positive_weight(weight)}
    if bad:
        raise RecipeError(f"corpus_weights must map corpora to positive finite numbers; bad entries: {bad}.")
    if len(corpora) < 2:
        raise RecipeError("corpus_weights weighs corpora against each other: it needs two corpora or more.")
    resolved = {name: float(given.get(name, 1.0)) for name in names}
    largest = max(resolved.values())
    drowned = [spelled.get(name, name) for name, weight in resolved.items() if weight / largest == 0.0]
    if drowned:
        raise RecipeError(
            f"corpus_weights: the weight of {', '.join(map(repr, drowned))} is too small beside the largest "
            f"({largest:g}) to be drawn at all; give weights within a few orders of magnitude of each other."
        )
    return resolved


def _is_positive_weight(weight: Any) -> bool:
    """A positive, finite number (not a boolean: YAML's ``true`` is not a weight)."""
    return isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight) and weight > 0


__all__ = [
    "check_corpora",
    "corpus_name_problem",
    "corpus_problems",
    "corpus_weights",
    "options_of_each_corpus",
    "train_only_corpora",
]
