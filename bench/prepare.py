"""Decode + resample + cache with ser-hf against the naive ``librosa.load(path, sr=16000)`` loop, in one run.

    python -m bench.prepare --quick                      # the shipped RAVDESS sample (240 FLAC clips), < 1 min
    python -m bench.prepare                              # ../shared/data: 48 kHz WAV originals and RAVDESS 16 kHz
    python -m bench.prepare --data-dir DIR --corpus NAME # any corpus folder

Figures are clips per second, the median of ``--repeats`` runs. "ser-hf cold" is ``load_corpus`` (header check of
every file) + ``prepare_audio`` into an empty cache; "ser-hf cached" is the same two calls again, served from the
Arrow cache, plus reading every waveform back; "cache hit + read" leaves out ``load_corpus`` (what a training run
that already holds the corpus pays). The naive loop keeps the decoded arrays in a list, as notebooks do.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile

from ser_hf import load_corpus, prepare_audio
from ser_hf.data.corpora import find_audio_files

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


def naive_loop(files: list[Path], sampling_rate: int) -> list[np.ndarray]:
    return [librosa.load(path, sr=sampling_rate)[0] for path in files]


def ser_hf_run(corpus: str, data_dir: Path, cache_dir: Path, num_proc: int) -> int:
    dataset = prepare_audio(load_corpus(corpus, data_dir), num_proc=num_proc, cache_dir=cache_dir)
    # Read every waveform back, as a training epoch would (zero-copy from the memory-mapped Arrow file).
    return read_all(dataset)


def read_all(dataset) -> float:
    """Touch every sample of the waveform column (a sum over it), as a training epoch reads them."""
    column = dataset.data.column("waveform")
    return float(sum(np.asarray(chunk.values).sum() for chunk in column.chunks))


def read_cached(dataset) -> int:
    """Only the cache hit: ``prepare_audio`` on an already-loaded corpus, then every waveform read back."""
    return read_all(prepare_audio(dataset, cache_dir=read_cached.cache_dir))


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def bench(name: str, corpus: str, data_dir: Path, repeats: int, num_proc: int) -> dict:
    files = find_audio_files(data_dir)
    info = soundfile.info(files[0])
    print(f"\n## {name}: {len(files)} clips in {data_dir} ({info.format}, {info.samplerate} Hz)")
    naive_loop(files[:2], 16000)  # import and first-call costs are not part of the loop
    naive, cold, cached, reads = [], [], [], []
    for _ in range(repeats):
        naive.append(timed(naive_loop, files, 16000))
        cache_dir = Path(tempfile.mkdtemp(prefix="ser_hf_bench_"))
        try:
            cold.append(timed(ser_hf_run, corpus, data_dir, cache_dir, num_proc))
            cached.append(timed(ser_hf_run, corpus, data_dir, cache_dir, num_proc))
            read_cached.cache_dir = cache_dir
            dataset = load_corpus(corpus, data_dir)
            reads.append(timed(read_cached, dataset))
        finally:
            shutil.rmtree(cache_dir)
    rates = {
        key: len(files) / statistics.median(times)
        for key, times in (("naive", naive), ("cold", cold), ("cached", cached), ("read", reads))
    }
    print(f"naive librosa.load loop : {rates['naive']:9.1f} clips/s")
    for key, label in (
        ("cold", f"ser-hf cold (num_proc={num_proc})"),
        ("cached", "ser-hf cached re-run"),
        ("read", "ser-hf cache hit + read"),
    ):
        print(f"{label:<24}: {rates[key]:9.1f} clips/s   {rates[key] / rates['naive']:6.2f}x naive")
    return rates


def write_48k_copies(source: Path, target: Path) -> Path:
    """Re-encode a 16 kHz corpus as 48 kHz 16-bit WAV (same speech, the rate of the published originals)."""
    for path in find_audio_files(source):
        out = target / path.relative_to(source).with_suffix(".wav")
        out.parent.mkdir(parents=True, exist_ok=True)
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        soundfile.write(out, librosa.resample(samples.T, orig_sr=rate, target_sr=48000).T, 48000, subtype="PCM_16")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the shipped sample only, under a minute")
    parser.add_argument("--smoke", action="store_true", help="one actor of the sample, one run (tests)")
    parser.add_argument("--data-dir", type=Path, help="a corpus folder to measure instead of the defaults")
    parser.add_argument("--corpus", default="ravdess", help="corpus name for --data-dir")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-proc", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    print(
        f"# bench/prepare.py on {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"librosa {librosa.__version__}, {time.strftime('%Y-%m-%d')}"
    )
    if args.smoke:
        with tempfile.TemporaryDirectory(prefix="ravdess_smoke_") as tmp:
            for clip in sorted((REPO / "data" / "ravdess_sample" / "Actor_01").glob("*.flac"))[:8]:
                (Path(tmp) / clip.name).symlink_to(clip)
            bench("8 clips of the shipped sample", "ravdess", Path(tmp), 1, 1)
    elif args.data_dir is not None:
        bench(args.data_dir.name, args.corpus, args.data_dir, args.repeats, args.num_proc)
    elif args.quick or not SHARED.is_dir():
        bench("shipped RAVDESS sample", "ravdess", REPO / "data" / "ravdess_sample", args.repeats, args.num_proc)
    else:
        bench("RAVDESS 48 kHz originals", "ravdess", SHARED / "ravdess_48k_originals", args.repeats, args.num_proc)
        with tempfile.TemporaryDirectory(prefix="ravdess_48k_") as tmp:
            print("\nWriting RAVDESS actors 1-20 as 48 kHz WAV for a larger 48 kHz corpus ...")
            copies = write_48k_copies(SHARED / "ravdess_16k", Path(tmp))
            bench("RAVDESS 1200 clips as 48 kHz WAV", "ravdess", copies, args.repeats, args.num_proc)
        bench("RAVDESS 16 kHz FLAC", "ravdess", SHARED / "ravdess_16k", args.repeats, args.num_proc)


if __name__ == "__main__":
    main()
