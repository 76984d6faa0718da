"""Model cards: the card of a finished run rendered from ``hub_cards/model_card_template.md`` through
``huggingface_hub.ModelCard`` (metadata as ``ModelCardData``, every test metric as an ``EvalResult`` in the
``model-index``). Pushing a run with its card is :mod:`ser_hf.hub.push`.

Everything the card says is read from the run's output folder by :func:`~ser_hf.run_folder.read_run`
(``metrics.json``, ``run_config.json``, ``config.json``, ``preprocessor_config.json``, ``summary.json`` of a k-fold
run, ``reports/*/eval_report.json``), so the card of any finished run can be written again, and ``ser-hf push``
publishes a run trained long ago. :class:`SERCardData` states what the run was (model, data, training);
:mod:`ser_hf.hub.card_results` what it scored.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Optional, Sequence

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..atomic_files import atomic_path
from ..data.corpora import CORPORA, CorpusSpec
from ..evaluation.report import no_test_split_text, validation_choices, validation_role
from ..models import BASELINES, EnsembleConfig
from ..recipe.augmentation_arguments import AugmentationArguments
from ..recipe.data_arguments import DataArguments
from ..recipe.training_arguments import SERTrainingArguments
from ..run_folder import (
    CARD_FILE,
    RECIPE_FILE,
    RUN_CONFIG_FILE,
    SUMMARY_FILE,
    RunDir,
    RunRecord,
    read_run,
)
from ..run_record import RunReport, read_adaptation_record
from .card_results import (
    EVAL_REPORT_COLUMNS,
    KFOLD_COLUMNS,
    MODEL_INDEX_METRIC_TYPES,
    RESULT_COLUMNS,
    calibration_text,
    confusion_matrix_image,
    eval_report_rows,
    eval_results,
    kfold_table,
    main_split,
    per_class_rows,
    per_corpus_text,
    per_sex_text,
    results_rows,
)
from .card_rows import card_rows, row_details

logger = logging.getLogger(__name__)

#: The model card template, in ``hub_cards/`` (the package ``ser_hf.hub_cards`` once installed).
MODEL_CARD_TEMPLATE = "model_card_template.md"

#: The settings the card's hyperparameter table shows, in its order: ``(run config section, key, CardRow)`` of each
#: recipe key whose field metadata holds a card row (:mod:`ser_hf.recipe.fields`).
_HYPERPARAMETERS = card_rows({"training": SERTrainingArguments, "data": DataArguments})
#: The waveform augmentations the card names, in its order, each with the settings it shows (its card row's detail).
_AUGMENTATION_NAMES = card_rows({"augmentation": AugmentationArguments})


def model_card_template_path(name: str = MODEL_CARD_TEMPLATE) -> Path:
    """The path of a card template: from the installed package ``ser_hf.hub_cards`` (a wheel, or an editable install
    made with this version's ``setup.py``), else from ``hub_cards/`` of the source checkout ser_hf runs from."""
    try:
        path = Path(str(resources.files("ser_hf.hub_cards").joinpath(name)))
        if path.is_file():
            return path
    except ModuleNotFoundError:
        pass
    checkout = Path(__file__).resolve().parents[2] / "hub_cards" / name
    if checkout.is_file():
        return checkout
    raise FileNotFoundError(
        f"Model card template {name!r} not found in the package ser_hf.hub_cards nor at {checkout}; reinstall ser-hf."
    )


# --- The card -----------------------------------------------------------------------------------------------------


def _is_hub_id(value: Optional[str]) -> bool:
    return bool(value) and not Path(value).exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", value) is not None


def _versions() -> dict[str, str]:
    from .. import __version__

    # ser-hf run from a source tree never installed still knows its version (the card's install line names it).
    versions = {"ser-hf": __version__}
    for name in ("ser-hf", "transformers", "torch", "datasets", "huggingface_hub", "peft"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    versions["python"] = sys.version.split()[0]
    return versions


#: Files of a run folder that hold the text of a licence the user calls ``other`` (the card links the first found).
LICENSE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt")


class TrainingCorpus(NamedTuple):
    """A corpus the model was trained on, as its card names it.

    Attributes:
        key (`str`): the loader the recipe named (``ravdess``; ``folder`` for a folder or CSV corpus).
        name (`str`): the name its dataset recorded: a folder corpus' ``corpus_name``, else the key.
        spec (`CorpusSpec`, *optional*): what ser-hf knows of it (licence, language, speakers, citation); `None` for a
            folder or CSV corpus, of which ser-hf knows only what the run measured.
    """

    key: str
    name: str
    spec: Optional[CorpusSpec]

    @property
    def full_name(self) -> str:
        return self.spec.full_name if self.spec is not None else self.name


@dataclass
class SERCardData:
    """The facts of a run that its card states, gathered from its output folder (SetFit's ``SetFitModelCardData``
    pattern): :meth:`to_model_card_data` gives the Hub metadata, :meth:`template_kwargs` the card body's values.

    Args:
        run (`RunRecord`): the run, from :func:`~ser_hf.run_folder.read_run` (see :meth:`read`).
        model_id (`str`, *optional*): the Hub repository id the card is written for (used in the usage snippet and
            as the `model-index` name); defaults to the run folder's name.
        license (`str`, *optional*): the model's licence: a Hub licence id, or ``other`` for one whose text is in the
            run folder's ``LICENSE``, ``LICENSE.md`` or ``LICENSE.txt``; defaults to the training corpora's licence
            (``unknown`` for a corpus ser-hf does not know).
    """

    run: RunRecord
    model_id: Optional[str] = None
    license: Optional[str] = None

    @classmethod
    def read(cls, run_dir: str | os.PathLike, **kwargs) -> SERCardData:
        """The card's facts of the finished run in ``run_dir``; errors name what the card needs and the run lacks (a
        k-fold root's ``summary.json``, the ``run_config.json``)."""
        run = read_run(run_dir)
        if run.is_kfold_root and run.summary is None:
            raise FileNotFoundError(
                f"{run_dir} holds no finished ser-hf run: its folds are there but not the {SUMMARY_FILE} a k-fold run "
                "writes when its last fold finishes."
            )
        if run.run_config is None:
            raise FileNotFoundError(
                f"{run.model_dir / RUN_CONFIG_FILE} is missing: the card needs the run's configuration."
            )
        return cls(run, **kwargs)

    # --- facts ---

    @property
    def model_args(self) -> dict:
        return self.run.run_config.model

    @property
    def data_args(self) -> dict:
        return self.run.run_config.data

    @property
    def training_args(self) -> dict:
        return self.run.run_config.training

    @property
    def reports(self) -> list[RunReport]:
        return self.run.reports

    @property
    def labels(self) -> list[str]:
        return list(self.reports[0].labels)

    @property
    def corpora(self) -> list[str]:
        return list(self.data_args.get("corpus", []))

    @property
    def training_corpora(self) -> list[TrainingCorpus]:
        """The training corpora by the names their datasets recorded (the run's ``training_corpora``; a run from
        before ser-hf recorded them: the recipe's names)."""
        recorded = self.reports[0].training_corpora or []
        names = recorded if len(recorded) == len(self.corpora) else self.corpora
        return [TrainingCorpus(key, name, CORPORA.get(key)) for key, name in zip(self.corpora, names)]

    @property
    def known_corpora(self) -> list[CorpusSpec]:
        """The training corpora ser-hf knows (its corpus modules), whose facts the card may state."""
        return [corpus.spec for corpus in self.training_corpora if corpus.spec is not None]

    @property
    def corpora_names(self) -> str:
        """``RAVDESS + my-clips``: the training corpora as the card names them."""
        return " + ".join(corpus.full_name for corpus in self.training_corpora)

    @property
    def model_name(self) -> str:
        return self.model_id or self.run.run_dir.resolve().name

    @property
    def base_model(self) -> Optional[str]:
        name = self.model_args.get("model_name_or_path")
        return name if _is_hub_id(name) else None

    def adapted_from(self, report: RunReport) -> Optional[dict[str, Any]]:
        """What an adapted model (``ser-hf adapt``, which writes ``adaptation.json``) started from and trained on: the
        trained model (a Hub id or the folder's name), its labelled clips and speakers (from the report, or the
        adaptation's record where a self-training round added pseudo-labelled clips), which adaptation the
        cross-validation kept and its estimate on new speakers (:mod:`ser_hf.adaptation.selection`)."""
        record = read_adaptation_record(self.run.run_dir)
        if record is None:
            return None
        selection = record["selection"]
        # The model as the user named it (a Hub id is read from its snapshot in the Hub cache).
        source = str(record.get("adapted_from") or self.model_args.get("model_name_or_path"))
        return {
            "model": source if _is_hub_id(source) else Path(source).name,
            "is_hub_id": _is_hub_id(source),
            "labelled_clips": record.get("labelled_clips", report.split.clips.get("train", 0)),
            "speakers": len(report.split.speakers.get("train", [])),
            "pseudo_labelled_clips": record.get("pseudo_labelled_clips", 0),
            "unlabelled_recordings": record.get("unlabelled_recordings", 0),
            "new_labels": record.get("new_labels", []),
            "dropped_labels": record.get("dropped_labels", []),
            "unlabelled_labels": record.get("unlabelled_labels", []),
            "kept": None if selection is None else selection["chosen"],
            "unchanged": bool(selection and selection["unchanged"]),
            "estimate": None if selection is None else selection.get("estimate_line"),
            "unlabelled_clips_of_labelled_folder": record.get("unlabelled_clips_of_labelled_folder", 0),
            "self_trained_on_test_speakers": record.get("self_trained_on_test_speakers", []),
        }

    @property
    def is_baseline(self) -> bool:
        return self.model_args.get("model_type") in BASELINES

    @property
    def needs_remote_code(self) -> bool:
        """Whether transformers alone cannot build the model (its classes live in ser-hf or the repo's code)."""
        return bool(self.run.config and self.run.config.get("auto_map"))

    def card_license(self) -> tuple[str, Optional[str], Optional[str]]:
        """``(license, license_name, license_link)`` of the card: the user's licence, else the one inherited from the
        training corpora: theirs when they share a Hub licence id, ``unknown`` when ser-hf does not know one of them,
        else ``other``. A licence ``other`` always comes with a link to its terms."""
        if self.license == "other":
            found = [name for name in LICENSE_FILES if (self.run.run_dir / name).is_file()]
            if not found:
                raise ValueError(
                    f"license 'other' needs the licence's text: write it into {self.run.run_dir / LICENSE_FILES[1]} "
                    "(it is pushed with the model and the card links it), or give a Hub licence id "
                    "(https://huggingface.co/docs/hub/repositories-licenses)."
                )
            return "other", re.sub(r"[^a-z0-9.]+", "-", self.model_name.split("/")[-1].lower()) + "-license", found[0]
        if self.license is not None:
            return self.license, None, None
        specs = self.known_corpora
        if not specs or len(specs) < len(self.corpora):
            return "unknown", None, None
        licenses = {spec.license for spec in specs}
        if len(licenses) == 1 and "other" not in licenses:
            return licenses.pop(), None, None
        if len(specs) == 1:
            return "other", f"{specs[0].name}-license", specs[0].homepage
        # Each corpus' licence, with its link, is in the card's training-data table.
        return "other", "training-corpora-licenses", f"{CARD_FILE}#training-data"

    # --- Hub metadata ---

    def eval_results(self) -> list[EvalResult]:
        """The `model-index` results (see :func:`ser_hf.hub.card_results.eval_results`)."""
        return eval_results(self.run, self.corpora, [corpus.full_name for corpus in self.training_corpora])

    def to_model_card_data(self) -> ModelCardData:
        license_id, license_name, license_link = self.card_license()
        known = [spec.name for spec in self.known_corpora]  # a folder corpus is no dataset the Hub could link
        languages = sorted({spec.language for spec in self.known_corpora if spec.language})
        tags = ["audio-classification", "speech-emotion-recognition", "ser-hf", str(self.model_args.get("model_type"))]
        tags += known
        if self.model_args.get("use_lora"):
            tags.append("lora")
        if self.needs_remote_code:
            tags.append("custom_code")
        results = self.eval_results()
        return ModelCardData(
            base_model=self.base_model,
            datasets=known or None,
            language=languages or None,
            library_name="transformers",
            license=license_id,
            license_name=license_name,
            license_link=license_link,
            metrics=MODEL_INDEX_METRIC_TYPES,
            pipeline_tag="audio-classification",
            tags=tags,
            model_name=self.model_name if results else None,
            eval_results=results or None,
        )

    # --- the card's body ---

    def template_kwargs(self) -> dict[str, Any]:
        run, report = self.run, self.reports[0]
        corpora = self._corpora_rows()
        kwargs: dict[str, Any] = {
            "title": self.model_name.split("/")[-1],
            "summary": self._summary_sentence(),
            "labels": self.labels,
            "labels_text": ", ".join(f"`{label}`" for label in self.labels),
            "architecture": self._architecture(),
            "base_model": self.base_model,
            "adapted_from": self.adapted_from(report),
            "sampling_rate": (run.feature_extractor or {}).get("sampling_rate", self.data_args.get("sampling_rate")),
            "feature_summary": self._feature_summary(),
            "parameters": self._parameters(report),
            "corpora": corpora,
            "citations": [row for row in corpora if row["citation"]],
            "label_policy": self._label_policy(),
            "split": self._split(report),
            "audit": None if run.is_kfold_root else self._audit(report),
            "is_kfold": run.is_kfold_root,
            "folds": [name for name, _ in run.folds],
            "needs_remote_code": self.needs_remote_code,
            "model_path": self.model_id or "path/to/" + run.run_dir.resolve().name,
            "code_files": ", ".join(f"`{path.name}`" for path in sorted(run.model_dir.glob("*.py"))),
            # The metric tables' columns, from the metric table (ser_hf.metric_table.METRICS).
            "columns": {"results": RESULT_COLUMNS, "kfold": KFOLD_COLUMNS, "eval_reports": EVAL_REPORT_COLUMNS},
            "results": [] if run.is_kfold_root else results_rows(report),
            "calibration": None if run.is_kfold_root else calibration_text(report),
            "kfold": kfold_table(run.summary),
            "main_split": main_split(report),
            "per_class": [] if run.is_kfold_root else per_class_rows(report),
            "confusion_matrix_image": confusion_matrix_image(run, report),
            "per_sex": None if run.is_kfold_root else per_sex_text(report),
            "per_corpus": None if run.is_kfold_root else per_corpus_text(report),
            "provenance": self._provenance(report),
            "trained_on": self.corpora_names or "unknown corpora",
            "eval_reports": eval_report_rows(run.eval_reports, self.corpora),
            "training_regime": self._training_regime(),
            "hyperparameters": self._hyperparameters(),
            "augmentation": self._augmentation(),
            "training_summary": None if run.is_kfold_root else self._training_summary(report),
            "files": {"recipe": RECIPE_FILE if RunDir(run.run_dir).has(RECIPE_FILE) else None},
            **self._speech_facts(),
            "licence_notes": self._licence_notes(),
            "versions": _versions(),
        }
        return kwargs

    def _summary_sentence(self) -> str:
        """The card's first sentence: what the model is, on which corpora, evaluated how. The architecture's name (a
        noun phrase of any form: ``openSMILE functionals, linear or MLP``) stands between dashes."""
        kind = "baseline" if self.is_baseline else "classifier"
        opening = f"A speech emotion {kind} — {self._architecture()} — trained with ser-hf on {self.corpora_names}"
        if self.data_args.get("split_protocol") == "random":
            return (
                f"{opening}. **Its split is random by clip, so the same speakers are in training and test: its "
                "scores overestimate accuracy on new speakers.**"
            )
        return f"{opening}, evaluated on speakers it never heard during training."

    def _architecture(self) -> str:
        from ..models.runtime.registry import architecture_name

        model_type = self.model_args.get("model_type", "model")
        if model_type == EnsembleConfig.model_type:
            members = self.model_args.get("member_names") or []
            return f"an ensemble of {len(members)} models ({', '.join(members)})" if members else "an ensemble"
        text = architecture_name(model_type)
        config = self.run.config or {}
        pooling = self.model_args.get("pooling_mode") or config.get("pooling_mode")
        if pooling:
            text += f" with {pooling.replace('_', ' ')} pooling"
        layers = config.get("pooled_layers")
        if layers:
            text += f" of the encoder's layers {', '.join(map(str, layers))} only (0: the input embeddings)"
        elif self.model_args.get("use_weighted_layer_sum"):
            text += " over a learned weighted sum of all layers"
        return text

    def _feature_summary(self) -> Optional[str]:
        fe = self.run.feature_extractor or {}
        if "n_mels" in fe and fe.get("feature_extractor_type") != "MFCCFeatureExtractor":
            return (
                f"{fe['n_mels']} log-mel bands, {1000 * fe.get('win_length', 400) / fe['sampling_rate']:.0f} ms "
                f"windows every {1000 * fe.get('hop_length', 160) / fe['sampling_rate']:.0f} ms, "
                f"{fe.get('normalization', 'no')} normalisation"
            )
        if "n_mfcc" in fe:
            return f"{fe['n_mfcc']} MFCCs and frame features"
        if "feature_set" in fe:
            return f"openSMILE {fe['feature_set']} functionals ({fe.get('feature_size')} per clip)" + (
                ", speaker-normalised: evaluated transductively, each test speaker standardised with statistics of "
                "their own unlabelled clips; a single clip falls back to the training speakers' statistics"
                if fe.get("normalization") == "speaker"
                else ", corpus-normalised: evaluated transductively, each test corpus standardised with statistics of "
                "all its unlabelled clips; a single clip falls back to the training speakers' statistics"
                if fe.get("normalization") == "corpus"
                else f", {fe.get('normalization', 'no')} normalisation"
            )
        return None

    @staticmethod
    def _parameters(report: RunReport) -> str:
        counts = report.training.parameters if report.training is not None else None
        if not counts:
            return "not recorded"
        share = counts["trainable"] / counts["total"] if counts["total"] else 0.0
        return f"{counts['total']:,} in all, {counts['trainable']:,} trained ({100 * share:.1f} %)"

    def _corpora_rows(self) -> list[dict[str, Any]]:
        rows = []
        corpus_counts = self._clips_per_corpus()
        for corpus in self.training_corpora:
            spec = corpus.spec
            rows.append(
                {
                    "name": corpus.name,
                    "full_name": corpus.full_name,
                    "homepage": spec.homepage if spec else "",
                    "language": spec.language if spec and spec.language else "unknown",
                    "license": (spec.license_name or spec.license) if spec else "unknown",
                    "citation": spec.citation if spec else "",
                    "clips": corpus_counts.get(corpus.name, {}).get("clips", "–"),
                    "speakers": corpus_counts.get(corpus.name, {}).get("speakers", "–"),
                    "description": spec.speakers
                    if spec
                    else f"not a corpus ser-hf knows (its `{corpus.key}` loader read it); its language, licence, "
                    "speakers and recording conditions are unknown to ser-hf beyond what this card's tables show",
                }
            )
        return rows

    def _clips_per_corpus(self) -> dict[str, dict[str, int]]:
        report = self.reports[0]
        clips = sum(report.split.clips.values())
        speakers = {s for names in report.split.speakers.values() for s in names}
        names = [corpus.name for corpus in self.training_corpora]
        if len(names) == 1:
            return {names[0]: {"clips": clips, "speakers": len(speakers)}}
        # Merged corpora prefix speaker ids with the corpus name ("ravdess:01").
        return {
            name: {"clips": "–", "speakers": sum(1 for s in speakers if s.startswith(f"{name}:"))} for name in names
        }

    def _speech_facts(self) -> dict[str, Any]:
        """What the limitations say of the training speech: acted or not, languages, speakers, what was said. Every
        corpus ser-hf ships is acted; of a folder corpus, ser-hf knows none of these."""
        known = self.known_corpora
        unknown = " and ".join(corpus.name for corpus in self.training_corpora if corpus.spec is None)
        languages = [", ".join(sorted({_language_name(spec.language) for spec in known if spec.language}))]
        speakers = [f"{spec.full_name}: {spec.speakers}" for spec in known if spec.speakers]
        if unknown:
            languages.append(f"unknown ({unknown})")
            speakers.append(f"{unknown}: unknown")
        return {
            "acted": bool(known) and not unknown,
            "unknown_corpora": unknown,
            "acted_corpora": " + ".join(spec.full_name for spec in known),
            "texts": "; ".join(spec.texts for spec in known if spec.texts),
            "languages": "; ".join(filter(None, languages)) or "unknown",
            "speakers_summary": "; ".join(speakers) or "unknown",
        }

    def _label_policy(self) -> Optional[str]:
        parts = []
        label_map = self.data_args.get("label_map") or {}
        merged = [f"`{k}` merged into `{v}`" for k, v in label_map.items() if v is not None]
        dropped = [f"`{k}`" for k, v in label_map.items() if v is None]
        if merged:
            parts.append(", ".join(merged))
        if dropped:
            parts.append(f"clips labelled {', '.join(dropped)} dropped")
        if self.data_args.get("labels"):
            parts.append("only the labels " + ", ".join(f"`{label}`" for label in self.data_args["labels"]) + " kept")
        for spec in self.known_corpora:  # each corpus' own merges and drops, where the recipe's label_map keeps them
            for label, target in spec.default_label_map.items():
                if label not in label_map:
                    fate = "was dropped" if target is None else f"was merged into `{target}`"
                    parts.append(f"{spec.full_name}'s {label} is outside the vocabulary and {fate}")
        return "; ".join(parts) + "." if parts else None

    def _split(self, report: RunReport) -> dict[str, Any]:
        protocol = self.data_args.get("split_protocol", report.protocol)
        descriptions = {
            "speaker": "speaker-independent: every speaker is in exactly one of train, validation and test",
            "kfold": f"speaker-grouped stratified {self.data_args.get('num_folds')}-fold cross-validation: every "
            "speaker is tested exactly once and never trained on in the same fold",
            "loso": "leave-one-speaker-out: each fold tests one speaker the model never heard",
            "random": "random by clip (the same speakers are in training and test; it leaks, and is only there to "
            "measure the leak)",
        }
        rows = []
        if not self.run.is_kfold_root:
            for name, clips in report.split.clips.items():
                speakers = report.split.speakers.get(name, [])
                shown = ", ".join(speakers[:24]) + (", ..." if len(speakers) > 24 else "")
                rows.append({"name": name, "clips": clips, "num_speakers": len(speakers), "speakers": shown})
        no_test = None if self.run.is_kfold_root else no_test_split_text(report, self.training_args)
        note = no_test
        if report.fold is not None:
            fold_note = f"This model is fold {report.fold} of the run."
            note = f"{fold_note} {note}" if note else fold_note
        return {
            "protocol": protocol,
            "protocol_description": descriptions.get(protocol, protocol),
            "seed": report.split.seed if "seed" in report.split.to_dict() else self.data_args.get("split_seed"),
            "rows": rows,
            "note": note,
            # Said once: the note of a run without test speakers already says what its validation speakers chose.
            "validation_role": None if no_test else validation_role(report, self.training_args),
        }

    @staticmethod
    def _audit(report: RunReport) -> Optional[dict[str, Any]]:
        audit = report.leakage_audit
        if not audit:
            return None

        def shared(overlaps: Mapping[str, Sequence[str]]) -> str:
            pairs = [f"{pair}: {', '.join(map(str, values[:5]))}" for pair, values in overlaps.items() if values]
            return "; ".join(pairs) if pairs else "none"

        text = sorted({t for values in audit.get("text_overlap", {}).values() for t in values})
        return {
            "passed": audit["passed"],
            "speaker_overlap": shared(audit.get("speaker_overlap", {})),
            "file_overlap": shared(audit.get("file_overlap", {})) if audit.get("files_checked") else "not checked",
            "text_overlap": ", ".join(f"'{t}'" for t in text[:4]) + (", ..." if len(text) > 4 else ""),
        }

    def _training_regime(self) -> Optional[str]:
        model = self.model_args
        if self.is_baseline:
            return "Trained from scratch (random initialisation), every parameter updated."
        parts = []
        top_layers = model.get("finetune_top_layers")
        if model.get("use_lora") and top_layers:
            targets = model.get("lora_target_modules") or "their attention and feed-forward projections"
            parts.append(
                f"LoRA (peft) on the encoder's top {top_layers} layer(s): rank {model.get('lora_r')}, alpha "
                f"{model.get('lora_alpha')}, dropout {model.get('lora_dropout')}, on {targets}; the final layer "
                "norm and the classification head trained in full, the layers below frozen (their outputs computed "
                "once and cached); each batch encoded through its longest clip, not the whole window; the adapters "
                "are merged into the exported weights, so the model loads without peft"
            )
        elif model.get("use_lora"):
            targets = model.get("lora_target_modules") or "the attention projections"
            parts.append(
                f"LoRA (peft) on the frozen encoder: rank {model.get('lora_r')}, alpha "
                f"{model.get('lora_alpha')}, dropout {model.get('lora_dropout')}, on {targets}; the "
                "projector and classifier trained in full; the adapters are merged into the exported "
                "weights, so the model loads without peft"
            )
        elif top_layers:
            parts.append(
                f"Fine-tuned: the encoder's top {top_layers} layer(s) and its final layer norm "
                "trained with the classification head, the layers below frozen (their outputs computed once and "
                "cached); each batch encoded through its longest clip, not the whole window"
            )
        elif model.get("freeze_base_model"):
            parts.append(
                "Encoder frozen, only the classification head trained"
                + (
                    " (FAST mode: encoder outputs computed once and cached)"
                    if model.get("cache_encoder_outputs")
                    else ""
                )
            )
        else:
            if model.get("freeze_feature_encoder"):
                parts.append("convolutional feature encoder frozen")
            if model.get("num_frozen_layers"):
                parts.append(f"lowest {model['num_frozen_layers']} transformer layers frozen")
            parts = ["Fine-tuned: " + (", ".join(parts) if parts else "every parameter updated")]
        return "; ".join(parts) + "."

    def _hyperparameters(self) -> list[tuple[str, Any]]:
        sections = {"training": self.training_args, "data": self.data_args}
        steps = self.training_args.get("max_steps") or -1
        rows = [
            (row.label or name, sections[section][name])
            for section, name, row in _HYPERPARAMETERS
            if name in sections[section]
            and sections[section][name] not in (None, -1, False, "")
            and not (name == "num_train_epochs" and steps > 0)
        ]
        rows.append(("evaluation", "whole clips"))
        return [(name, json.dumps(value) if isinstance(value, (dict, list)) else value) for name, value in rows]

    def _augmentation(self) -> str:
        augmentation = self.run.run_config.augmentation
        parts = []
        for _, key, row in _AUGMENTATION_NAMES:
            probability = augmentation.get(key) or 0
            if probability:
                parts.append(f"{row.label} (p = {probability}, {row_details(row, augmentation)})")
        if augmentation.get("num_time_masks") or augmentation.get("num_freq_masks"):
            parts.append(
                f"SpecAugment ({augmentation.get('num_time_masks')} time masks of up to "
                f"{augmentation.get('time_mask_width')} frames, {augmentation.get('num_freq_masks')} "
                f"frequency masks of up to {augmentation.get('freq_mask_width')} bins)"
            )
        if augmentation.get("mixup_alpha"):
            parts.append(f"mixup of the model inputs (alpha = {augmentation['mixup_alpha']})")
        masking = {k: augmentation[k] for k in ("mask_time_prob", "mask_feature_prob") if augmentation.get(k)}
        if masking:
            parts.append("encoder masking " + ", ".join(f"{k} = {v}" for k, v in masking.items()))
        return "; ".join(parts) if parts else "none"

    def _training_summary(self, report: RunReport) -> Optional[str]:
        training = report.training
        metric = self.training_args.get("metric_for_best_model") or "metric"
        if training is None or not training.to_dict():
            return None
        best = training.best_checkpoint
        text = f"Trained for {training.global_step} steps ({training.epochs} epochs) in {training.wall_seconds} s"
        choices = validation_choices(report, self.training_args)
        if best and (choices is None or choices.get("best_epoch")):
            text += f"; the exported weights are those of {Path(best).name}"
            if training.best_metric is not None:
                text += f", the best by validation {metric} ({training.best_metric:.4f})"
        elif choices is not None:
            text += "; the exported weights are the last model's (no epoch chosen on the validation speakers)"
        if training.self_training_clips:
            share = self.training_args.get("self_training_share")
            text += (
                f". Self-training, transductive ({len(training.self_training_clips)} round(s) before this model): "
                "each round's model predicted the test split's clips, and the next trained from scratch on the "
                f"training clips and, for every predicted emotion, the {share:.0%} of its clips predicted with the "
                f"highest probability ({', '.join(map(str, training.self_training_clips))} clips), with the predicted "
                "emotions, never the true ones: the test figures are of a model adapted to the test clips' audio"
            )
        return text + "."

    def _provenance(self, report: RunReport) -> str:
        """Where the Results section's figures come from: held-out speakers (or clips) of the corpora the model
        trained on, so every one of them is in-corpus."""
        names = self.corpora_names or "its training corpora"
        if self.data_args.get("split_protocol", report.protocol) == "random":
            held_out = "held-out clips of the same speakers"
        elif self.run.is_kfold_root:
            held_out = "each fold's held-out test speakers"
        else:
            held_out = f"its held-out {main_split(report) or 'evaluation'} speakers"
        return (
            f"**In-corpus.** The model was trained on {names}; every figure in this section is on {held_out} of "
            f"{'the same corpus' if len(self.corpora) == 1 else 'the same corpora'}. On a corpus it was not trained "
            "on (cross-corpus), expect far less: see the limitations below."
        )

    def _licence_notes(self) -> Optional[str]:
        derived = [f"{spec.full_name} ({spec.license_name or spec.license})" for spec in self.known_corpora]
        notes = []
        if derived:
            notes.append(
                "the weights are derived from " + ", ".join(derived) + "; their terms (non-commercial, share-alike "
                "or no-derivatives where they say so) apply to this model as well"
            )
        unknown = " and ".join(corpus.name for corpus in self.training_corpora if corpus.spec is None)
        if unknown:
            notes.append(
                f"the weights are {'also ' if derived else ''}derived from {unknown}, whose licence is unknown to "
                "ser-hf: check its terms (and its speakers' consent) before publishing or using the model"
            )
        return "; ".join(notes) + "." if notes else None


def _language_name(code: str) -> str:
    return {"en": "English", "de": "German"}.get(code, code)


def create_model_card(
    run_dir: str | os.PathLike,
    *,
    model_id: Optional[str] = None,
    license: Optional[str] = None,
    template_path: Optional[str | os.PathLike] = None,
) -> ModelCard:
    """Render the model card of a finished run from ``hub_cards/model_card_template.md``.

    Args:
        run_dir (`str` or `os.PathLike`): the run's output folder (an exported model, a fold, or a k-fold root).
        model_id (`str`, *optional*): the Hub repository id the card is for (usage snippet, `model-index` name).
        license (`str`, *optional*): the model's licence: a Hub licence id, or ``other`` for one whose text is in the
            run folder's ``LICENSE``, ``LICENSE.md`` or ``LICENSE.txt``; defaults to the training corpora's.
        template_path (`str`, *optional*): another Jinja template.

    Example:

    ```python
    >>> from ser_hf.hub.card import create_model_card
    >>> card = create_model_card("outputs/demo", model_id="me/ser-demo")
    >>> card.data.pipeline_tag, card.data.eval_results[0].metric_type, card.data.eval_results[0].metric_name
    ('audio-classification', 'recall', 'Unweighted accuracy (UA, macro recall), test split')
    ```
    """
    data = SERCardData.read(run_dir, model_id=model_id, license=license)
    path = Path(template_path) if template_path is not None else model_card_template_path()
    card = ModelCard.from_template(data.to_model_card_data(), template_path=str(path), **data.template_kwargs())
    # The template's optional sections leave runs of blank lines behind.
    return ModelCard(re.sub(r"\n{3,}", "\n\n", str(card)))


def write_model_card(run_dir: str | os.PathLike, **kwargs) -> Path:
    """Write the card of a finished run as ``README.md`` in its folder (see :func:`create_model_card`)."""
    card = create_model_card(run_dir, **kwargs)
    path = Path(run_dir) / CARD_FILE
    with atomic_path(path) as partial:
        card.save(partial)
    return path


__all__ = [
    "CARD_FILE",
    "MODEL_CARD_TEMPLATE",
    "RECIPE_FILE",
    "SERCardData",
    "create_model_card",
    "model_card_template_path",
    "write_model_card",
]
