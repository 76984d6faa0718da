#!/usr/bin/env bash
# The RAVDESS results of docs/results/: every shipped RAVDESS recipe under stratified speaker-grouped 5-fold on actors
# 01-20 (ser-hf kfold through bench/accuracy.py; 4 test actors a fold, every actor tested once, fold seed 42), mean ±
# std over folds, every fold listed, all folds' test speakers pooled with a 95 % speaker-bootstrap interval, in
# docs/results/ravdess_kfold/accuracy-RECIPE-seed42.json:
#
# 1. every shipped RAVDESS recipe (openSMILE, log-mel CNN2D and CRNN, the raw-waveform CNN1D, the older log-mel
#    baselines, the ensembles, whose members train on the same folds in the run's members/ folder);
# 2. the log-mel baselines that ship no speaker-normalised recipe, speaker-normalised (a recipe override), so that every
#    model is measured with and without speaker normalisation (the CNN1D reads the waveform: no features to
#    standardise);
# 3. the openSMILE pair's random-split control: ser-hf leakage-study on one speaker split;
# 4. the CNN2D's pooled embeddings of fold 0's test actors, coloured by emotion and by speaker (ser-hf embed).
#
# The log-mel recipes take 20-50 min each on a 2-core CPU, the CNN1D longer. Every step resumes (or reads back) what
# an interrupted run left, so the script can be run again after a stop.
#
#   bash docs/results/make_ravdess_results.sh            # from the repository root, with ser-hf installed (make setup)
#   RECIPES="ravdess_crnn" bash docs/results/make_ravdess_results.sh      # step 1 for some recipes only
#   DATA=/path/to/ravdess bash docs/results/make_ravdess_results.sh
set -euo pipefail

DATA=${DATA:-../shared/data/ravdess_16k}   # Actor_01 ... Actor_20, 16 kHz speech FLAC
RUNS=${RUNS:-runs/results}                  # training runs (models, checkpoints): not committed
PYTHON=${PYTHON:-.venv/bin/python}
SER_HF=${SER_HF:-.venv/bin/ser-hf}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one torch thread per run (docs/results/LOG.md, "Where and how")
RECIPES=${RECIPES:-ravdess_opensmile ravdess_opensmile_speaker ravdess_cnn2d ravdess_cnn2d_speaker ravdess_crnn \
  ravdess_crnn_speaker ravdess_cnn1d ravdess_cnn_attention_lstm ravdess_parallel_cnn_transformer ravdess_kfold_cnn2d \
  ravdess_ensemble ravdess_ensemble_speaker ravdess_ensemble3 ravdess_ensemble3_speaker}
OUT=docs/results/ravdess_kfold
KFOLD=(--data-dir "$DATA" --output-dir "$RUNS/bench_accuracy" --results "$OUT")

# 1. Every shipped RAVDESS recipe.
for recipe in $RECIPES; do
  "$PYTHON" -m bench.accuracy "recipes/$recipe.yaml" "${KFOLD[@]}"
done

# 2. The log-mel baselines without a speaker-normalised recipe, speaker-normalised.
for recipe in ravdess_cnn_attention_lstm ravdess_parallel_cnn_transformer; do
  "$PYTHON" -m bench.accuracy "recipes/$recipe.yaml" "${KFOLD[@]}" --feature_extractor_config.normalization speaker
done

# 3. The openSMILE pair's random-split control (the same clips and sizes, every speaker in train and test).
for recipe in ravdess_opensmile ravdess_opensmile_speaker; do
  "$SER_HF" leakage-study "recipes/$recipe.yaml" --data_dir "$DATA" --output_dir "$RUNS/leakage_$recipe" \
    --validation_speakers 17 18 --test_speakers 19 20
  cp "$RUNS/leakage_$recipe/leakage.json" "$OUT/leakage-${recipe#ravdess_}.json"
done

# 4. Where the CNN2D of fold 0 (test actors 01, 06, 13, 14) puts its test actors' clips (step 1 trained it).
"$SER_HF" embed --model "$RUNS/bench_accuracy/ravdess_cnn2d-seed42/fold-0" --corpus ravdess --data-dir "$DATA" \
  --speakers 01,06,13,14 --output-dir "$RUNS/embed_cnn2d"
mkdir -p docs/results/embed_cnn2d
cp "$RUNS"/embed_cnn2d/embed.json "$RUNS"/embed_cnn2d/embedding_*.png docs/results/embed_cnn2d/
