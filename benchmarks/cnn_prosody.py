"""A candidate for the CNN's input, measured before it is built: two prosody rows under the log-mel bands.

The classical model reads the voice's F0 (in semitones) and the fusion's lead over the CNN (+0.054, p < 0.001,
`paired_models.py`) says the two models see different things; 64 or 128 mel bands resolve the harmonics only
roughly. This study gives the default CNN two more input rows per 10 ms frame: the F0 track of `f0_track` in
semitones re 55 Hz (interpolated across unvoiced frames, scaled (st - 18) / 8) and its periodicity (0..1). The rows
pass the front end unnormalised (the log-mel bands are normalised as before; every row gets its deltas), and the
speaker adaptation on every layer's statistics (`adapt='em'`) takes a speaker's F0 level off, as it takes off the
rest of a speaker. Time augmentations (speed, shift) move the prosody rows with the bands; the mel-axis and dB
augmentations (pitch, gain, noise, SpecAugment) touch the bands only.

It patches `ser_kit.cnn` in this process (frames, row count, front end, augmentation) and runs
`cnn_speed_speakers.py` with the arguments given, so the protocol, folds, seeds and scoring are that script's:

    SER_KIT_DATA=../shared/data python benchmarks/cnn_prosody.py --models 3 --fusion \
        --out benchmarks/results/cnn_speed_speakers_30ep_x3_em_layers_cw_ll_prosody.json
"""
import hashlib, os, sys, warnings
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, str(Path(__file__).parent))
import cnn_speed_speakers as bench
import ser_kit.cnn as C
from ser_kit.data import trim_silence, pad_crop, load_audio
from ser_kit.features import f0_track, SR
import soxr

EXTRA = 2   # prosody rows: F0 (semitones, scaled) and periodicity
CACHE = Path(os.environ.get('SER_KIT_CACHE', Path.home() / '.cache' / 'ser_kit')) / 'prosody_study'


def prosody_rows(y: np.ndarray, sr: int, f: dict) -> np.ndarray:
    "[EXTRA, T] rows of one clip, on the frames `frame_features` makes with the same settings."
    y = np.asarray(y, np.float32); speed = f.get('speed')
    if speed and speed != 1: sr = sr * speed
    if sr != SR: y = soxr.resample(y, sr, SR).astype(np.float32)
    if f.get('trim_db'): y = trim_silence(y, SR, f['trim_db'])
    y = pad_crop(y, int(round(f['seconds'] * SR)))
    f0, s = f0_track(y, SR); v = f0 > 0
    st = np.full(len(f0), 18.0, np.float32)
    if v.any(): st = np.interp(np.arange(len(f0)), np.flatnonzero(v), 12 * np.log2(f0[v] / 55.0)).astype(np.float32)
    return np.stack([(st - 18) / 8, s]).astype(np.float32)


def with_prosody(X: np.ndarray, rows: list) -> np.ndarray:
    "Frames [N, 1, F, T] with the prosody rows [N, 1, EXTRA, T] under them."
    P = np.stack(rows)[:, None]
    return np.concatenate([X, P[..., :X.shape[-1]]], axis=2)


orig_cached, orig_clip, orig_bands = C.cached_frames, C.clip_frames, C.n_bands


def cached_frames(manifest, features=None, n_jobs=1, progress=False):
    X, idx = orig_cached(manifest, features, n_jobs, progress)
    f = {**C.FEATURES, **(features or {})}; CACHE.mkdir(parents=True, exist_ok=True); rows = []
    for p in manifest.loc[idx, 'path']:
        key = hashlib.sha1(f"{p}|{os.path.getmtime(p)}|{f.get('speed')}|{f['seconds']}|{f.get('trim_db')}".encode())
        fn = CACHE / f"{key.hexdigest()}.npy"
        if fn.exists(): rows.append(np.load(fn)); continue
        r = prosody_rows(load_audio(p, sr=SR), SR, f); np.save(fn, r); rows.append(r)
    return with_prosody(X, rows), idx


def clip_frames(y, sr=16000, features=None):
    f = {**C.FEATURES, **(features or {})}
    return with_prosody(orig_clip(y, sr, features)[None], [prosody_rows(y, sr, f)])[0]


def n_bands(features=None): return orig_bands(features) + EXTRA


orig_forward = C.Frontend.forward


def forward(self, x):
    "The bands through the front end as before; the prosody rows as they are; deltas of all; then the time pooling."
    m, p = x[:, :, :-EXTRA], x[:, :, -EXTRA:]
    d, tp = self.deltas, self.time_pool
    self.deltas, self.time_pool = False, 1
    try: m = orig_forward(self, m)
    finally: self.deltas, self.time_pool = d, tp
    x = torch.cat([m, p], dim=2)
    if self.deltas:
        dd = self.delta(x); x = torch.cat([x, dd, self.delta(dd)], dim=1)
    return F.avg_pool2d(x, (1, tp)) if tp > 1 else x


def augment_batch(x, augment=None, gen=None, n_extra=0):
    "As `ser_kit.cnn.augment_batch`, the same order; mel-axis and dB augmentations on the bands only."
    aug = C.AUGMENT if augment is None else augment
    for name in ('speed', 'pitch', 'shift', 'gain', 'noise', 'specaug'):
        if not aug.get(name): continue
        if name in ('speed', 'shift'): x = C.AUG_FUNCS[name](x, aug[name], gen)
        else: x = torch.cat([C.AUG_FUNCS[name](x[:, :, :-EXTRA], aug[name], gen), x[:, :, -EXTRA:]], dim=2)
    return x


C.cached_frames, C.clip_frames, C.n_bands, C.Frontend.forward, C.augment_batch = (
    cached_frames, clip_frames, n_bands, forward, augment_batch)
bench.cached_frames = cached_frames

if __name__ == '__main__':
    warnings.simplefilter('ignore')
    bench.main()
