"""Issue 96, label-free choice of the WPE front end's prediction filter: how far a clip's Whisper-base layer statistics
move under a 0.6-s room (and 10-dB pink noise) once each speaker's states are standardised per condition, as
`ser-hf evaluate --conditions` standardises them, with no front end and with WPE at several filter lengths."""
import json, sys, time, zlib
from pathlib import Path
import numpy as np, torch
from transformers import WhisperModel
from ser_hf.data.decode import decode_waveform
from ser_hf.inputs.degradations import parse_condition
from ser_hf.models.feature_extraction_whisper import SerWhisperFeatureExtractor, WPE_SETTINGS
from ser_hf.models.pooling import masked_mean_and_std
torch.set_num_threads(2)
D = Path("/work/shared/data"); OUT = Path(sys.argv[1]); OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(96)
def pick(files, n): files = sorted(files); return [files[i] for i in sorted(rng.choice(len(files), n, replace=False))]
clips = {}
for a in ("17", "18", "19", "20"): clips[f"ravdess:{a}"] = pick((D / "ravdess_16k" / f"Actor_{a}").glob("*.flac"), 18)
for s in ("OAF", "YAF"): clips[f"tess:{s}"] = pick(D.glob(f"tess/{s}_*/*"), 18)
for s in ("EB0", "IC0", "KD0", "KS0"): clips[f"nemo:{s}"] = pick(D.glob(f"nemo/samples/{s}_*.flac"), 18)
for s in ("01", "02", "03", "04"): clips[f"banglaser:{s}"] = pick(D.glob(f"banglaser/*-{s}.flac"), 18)
conditions = {"clean": None, "room": parse_condition("reverb:rt60=0.6"), "noise10": parse_condition("pink_noise:snr=10")}
variants = {"none": None, "wpe10": 10, "wpe20": 20, "wpe40": 40}
model = WhisperModel.from_pretrained("/work/shared/models/whisper-base-encoder").encoder.eval()
pos = 500; emb = model.embed_positions; short = torch.nn.Embedding(pos, emb.embedding_dim); short.weight.data.copy_(emb.weight.data[:pos])
model.embed_positions = short; model.max_source_positions = pos; model.config.max_source_positions = pos
from transformers import WhisperFeatureExtractor
fx = SerWhisperFeatureExtractor.from_whisper(WhisperFeatureExtractor.from_pretrained("/work/shared/models/whisper-base-encoder", chunk_length=10), dereverberation="wpe")
assert fx.dereverberation == "wpe" and fx.n_samples == 160000
waves = {}
for spk, files in clips.items():
    for f in files:
        x = decode_waveform(str(f), 16000)[: 16000 * 10]
        for cname, cond in conditions.items():
            if cond is None: waves[(spk, f.name, cname)] = x; continue
            r = np.random.default_rng([cond.seed(), zlib.crc32(f.name.encode())])
            waves[(spk, f.name, cname)] = np.asarray(cond.apply(x, 16000, r), dtype=np.float32)
results = {}
for vname, taps in variants.items():
    states, wpe_s, audio_s, started = {}, 0.0, 0.0, time.time()
    for key, x in waves.items():
        if taps is not None:
            WPE_SETTINGS["taps"] = taps; t = time.perf_counter(); x = fx.dereverberate(x); wpe_s += time.perf_counter() - t
            audio_s += len(x) / 16000
        feats = fx(x, sampling_rate=16000, return_tensors="pt", return_attention_mask=True)
        with torch.no_grad():
            hs = model(feats.input_features, output_hidden_states=True).hidden_states
        n = int(np.ceil(len(x) / 320)); mask = torch.zeros(1, pos, dtype=torch.bool); mask[0, :n] = True
        states[key] = torch.cat([torch.cat(masked_mean_and_std(h, mask), -1) for h in hs], -1)[0].numpy()
    # standardise per speaker and condition; distance of each condition's clip from its clean clip (rms over values)
    out = {}
    for cname in ("room", "noise10"):
        per_corpus = {}
        for spk, files in clips.items():
            def z(c):
                m = np.stack([states[(spk, f.name, c)] for f in files]); return (m - m.mean(0)) / (m.std(0) + 1e-6)
            zc, zd = z("clean"), z(cname)
            per_corpus.setdefault(spk.split(":")[0], []).append(float(np.sqrt(((zd - zc) ** 2).mean(1)).mean()))
        out[cname] = {c: round(float(np.mean(v)), 4) for c, v in per_corpus.items()}
        out[cname]["mean"] = round(float(np.mean([np.mean(v) for v in per_corpus.values()])), 4)
    out["wpe_seconds_per_audio_second"] = round(wpe_s / audio_s, 4) if audio_s else 0.0
    out["wall_seconds"] = round(time.time() - started, 1)
    results[vname] = out
    print(vname, json.dumps(out), flush=True)
    (OUT / "proxy.json").write_text(json.dumps({"clips_per_speaker": 18, "speakers": list(clips), "results": results}, indent=2))
