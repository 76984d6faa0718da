# The bounded steps of a device-tool script (bench/gpu_figures.sh, bench/gpu_profile.sh), sourced by each: every step
# runs under what is left of BUDGET seconds, logs to $RESULTS/NAME.log, and packs $RESULTS into $OUT/$PACK after it,
# so that a call cut short still returns the steps that ended (the tool returns 8 files at most).
#
#   RESULTS=... PACK=name.tgz BUDGET=300 source bench/gpu_steps.sh; step NAME SECONDS COMMAND...
#   STEPS="a b": only these steps run (a rerun of the ones a call did not finish); default: every step

pack() {  # everything written so far, as one file
    tar czf "$OUT/$PACK" -C "$(dirname "$RESULTS")" "$(basename "$RESULTS")"
}

step() {  # step NAME SECONDS COMMAND...: run it bounded, log it, pack; skipped once the budget is spent
    local name=$1 limit=$2
    shift 2
    if [ -n "${STEPS:-}" ] && [[ " $STEPS " != *" $name "* ]]; then
        return
    fi
    if ((SECONDS + 20 > BUDGET)); then
        echo "== $name: skipped ($SECONDS s of the $BUDGET s budget spent)" | tee -a "$RESULTS/steps.log"
        return
    fi
    local started=$SECONDS
    ((limit > BUDGET - SECONDS)) && limit=$((BUDGET - SECONDS))
    echo "== $name (at $started s, at most $limit s): $*" | tee -a "$RESULTS/steps.log"
    timeout --kill-after=10 "$limit" "$@" > "$RESULTS/$name.log" 2>&1
    local status=$?
    echo "== $name: exit $status after $((SECONDS - started)) s" | tee -a "$RESULTS/steps.log"
    grep -v -i "warn\|it/s\]\|examples/s\]\|Writing model shards" "$RESULTS/$name.log" | tail -n 16
    pack
}
