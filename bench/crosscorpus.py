"""Leave-one-corpus-out accuracy, the headline benchmark: a driver over ``ser-hf loco``
(:func:`ser_hf.experiments.loco.run_loco`), which holds the protocol (docs/guides/evaluation.md: which emotions train,
which are scored). This script only puts the real corpora of ``../shared/data`` in play (RAVDESS actors 01-20, TESS,
nEMO; BanglaSER where ``--corpora`` names it), the seeds, the statistics and the result files.

    python -m bench.crosscorpus recipes/ravdess_whisper_base_fast.yaml \\
        --normalizations global utterance corpus speaker --seeds 42 7 43 \\
        --model-path openai/whisper-base=../shared/models/whisper-base-encoder
    python -m bench.crosscorpus recipes/general_whisper_base.yaml --corpora ravdess tess nemo banglaser

The corpora in play (``--corpora``; by default a merged recipe's own, RAVDESS, TESS and nEMO for a recipe of one
corpus) are read from ``../shared/data``, each left out in turn; every left-out corpus is scored on its own
emotions that the model has among the six RAVDESS, TESS and nEMO share (neutral, happy, sad, angry, fearful,
surprised), so that a fourth corpus leaves the three directions as the three-corpus benchmark scores them. Any other
``--key value`` overrides the recipes (``--labels neutral happy ...`` trains on fewer emotions). Each recipe writes
the result file ``RESULTS/loco-NAME.json`` (NAME: the recipe's, with its corpora where not the three, and a digest of
the overrides where there are any), read back cell by cell when run again, and prints its rows.
"""

from __future__ import annotations

from pathlib import Path

from bench.harness import EXTRA_CORPORA, SHARED_CORPORA, driver_arguments, driver_parser, variant_name
from ser_hf.data.corpora import CORPORA
from ser_hf.experiments.loco import NORMALIZATIONS, loco_row, run_loco, shared_labels
from ser_hf.recipe.yaml_io import read_recipe_file


def benchmark_labels() -> list[str]:
    """The emotions the benchmark scores: those every corpus of ``SHARED_CORPORA`` holds."""
    return shared_labels({name: CORPORA[name].emotion_codes.values() for name in SHARED_CORPORA}, list(SHARED_CORPORA))


def main(argv=None) -> list[dict]:
    corpora_in_reach = {**SHARED_CORPORA, **EXTRA_CORPORA}
    parser = driver_parser("crosscorpus", __doc__)
    parser.add_argument("--corpora", nargs="+", choices=list(corpora_in_reach), help="default: see above")
    parser.add_argument("--normalizations", nargs="+", choices=list(NORMALIZATIONS), help="default: the recipe's")
    parser.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: the recipe's)")
    args, overrides, paths = driver_arguments(parser, argv)
    documents = []
    for recipe in args.recipes:
        corpora = args.corpora or read_recipe_file(recipe).get("corpus")
        corpora = corpora if isinstance(corpora, list) and len(corpora) > 1 else list(SHARED_CORPORA)
        unknown = [name for name in corpora if name not in corpora_in_reach]
        missing = [str(corpora_in_reach[name]) for name in corpora if name not in unknown]
        missing = [folder for folder in missing if not Path(folder).is_dir()]
        if unknown or missing:
            parser.error(f"{recipe}: {', '.join(unknown + missing)} not in ../shared/data, which the benchmark reads.")
        in_play = {"corpus": corpora, "data_dir": [str(corpora_in_reach[name]) for name in corpora]}
        name = variant_name(recipe, overrides) + ("" if corpora == list(SHARED_CORPORA) else "-" + "_".join(corpora))
        output = args.results / f"loco-{name}.json"
        document = run_loco(
            recipe,
            output,
            seeds=args.seeds,
            normalizations=args.normalizations,
            model_paths=paths,
            overrides={**in_play, "report_to": "none", "push_to_hub": False, **overrides},
            run_dir=args.output_dir / name,
            score_labels=benchmark_labels(),
            command=args.command,
        )
        print(loco_row(document), f"\nwritten to {output}", flush=True)
        documents.append(document)
    return documents


if __name__ == "__main__":
    main()
