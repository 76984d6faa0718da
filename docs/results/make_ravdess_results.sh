#!/usr/bin/env bash
# The RAVDESS results of docs/results/: every shipped RAVDESS recipe under stratified speaker-grouped 5-fold on actors
# 01-20 (bench/accuracy.py; 4 test actors a fold, every actor tested once, fold seed 42), mean ± std over folds, every
# fold listed, all folds' test speakers pooled with a 95 % speaker-bootstrap interval, in
# docs/results/ravdess_kfold/*.{json,md}:
#
# 1. the openSMILE pair with a random-split control of the same clips and sizes per fold (--leakage: the leakage
#    study, inflation with its spread), then the same with each test actor heard in two emotions only;
# 2. every other shipped RAVDESS recipe (log-mel CNN2D and CRNN, the raw-waveform CNN1D, the older log-mel
#    baselines, the ensembles, whose members train again in their own folder);
# 3. the log-mel baselines that ship no speaker-normalised recipe, speaker-normalised (--set), so that every model is
#    measured with and without speaker normalisation (the CNN1D reads the waveform: no features to standardise);
# 4. the CNN2D's pooled embeddings of fold 0's test actors, coloured by emotion and by speaker (ser-hf embed).
#
# The log-mel recipes take 20-50 min each on a 2-core CPU, the CNN1D longer. Every step resumes (or reads back) what
# an interrupted run left, so the script can be run again after a stop.
#
#   bash docs/results/make_ravdess_results.sh            # from the repository root, with ser-hf installed (make setup)
#   RECIPES="ravdess_crnn" bash docs/results/make_ravdess_results.sh      # step 2 for some recipes only
#   DATA=/path/to/ravdess bash docs/results/make_ravdess_results.sh
set -euo pipefail

DATA=${DATA:-../shared/data/ravdess_16k}   # Actor_01 ... Actor_20, 16 kHz speech FLAC
RUNS=${RUNS:-runs/results}                  # training runs (models, checkpoints): not committed
PYTHON=${PYTHON:-.venv/bin/python}
SER_HF=${SER_HF:-.venv/bin/ser-hf}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one torch thread per run (docs/results/LOG.md, "Where and how")
RECIPES=${RECIPES:-ravdess_cnn2d ravdess_cnn2d_speaker ravdess_crnn ravdess_crnn_speaker ravdess_cnn1d \
  ravdess_cnn_attention_lstm ravdess_parallel_cnn_transformer ravdess_kfold_cnn2d ravdess_ensemble \
  ravdess_ensemble_speaker ravdess_ensemble3 ravdess_ensemble3_speaker}
KFOLD=(--data-dir "$DATA" --output-dir "$RUNS/bench_accuracy")
OUT=docs/results/ravdess_kfold

# 1. The openSMILE pair, with the random-split controls; then each test actor reduced to two emotions.
OPENSMILE=(recipes/ravdess_opensmile.yaml recipes/ravdess_opensmile_speaker.yaml)
"$PYTHON" bench/accuracy.py "${OPENSMILE[@]}" "${KFOLD[@]}" --leakage --results "$OUT/accuracy.json"
"$PYTHON" bench/accuracy.py "${OPENSMILE[@]}" "${KFOLD[@]}" --test-emotions-per-speaker 2 \
  --results "$OUT/accuracy-test2.json"

# 2. Every other shipped RAVDESS recipe.
for recipe in $RECIPES; do
  "$PYTHON" bench/accuracy.py "recipes/$recipe.yaml" "${KFOLD[@]}" --results "$OUT/accuracy-${recipe#ravdess_}.json"
done

# 3. The log-mel baselines without a speaker-normalised recipe, speaker-normalised.
for recipe in ravdess_cnn_attention_lstm ravdess_parallel_cnn_transformer; do
  "$PYTHON" bench/accuracy.py "recipes/$recipe.yaml" "${KFOLD[@]}" --set feature_extractor_config.normalization=speaker \
    --results "$OUT/accuracy-${recipe#ravdess_}_speaker.json"
done

# 4. Where the CNN2D of fold 0 (test actors 01, 06, 13, 14) puts its test actors' clips.
"$PYTHON" bench/accuracy.py recipes/ravdess_cnn2d.yaml "${KFOLD[@]}"  # reads back step 2's folds
"$SER_HF" embed --model "$RUNS/bench_accuracy/ravdess_cnn2d-seed42/fold-0" --corpus ravdess --data-dir "$DATA" \
  --speakers 01,06,13,14 --output-dir "$RUNS/embed_cnn2d"
mkdir -p docs/results/embed_cnn2d
cp "$RUNS"/embed_cnn2d/embed.json "$RUNS"/embed_cnn2d/embedding_*.png docs/results/embed_cnn2d/
