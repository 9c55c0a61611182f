"""`rich` vs `default` features for the classical model, with and without speaker adaptation, on RAVDESS actors 01-16.

Folds of four actors (01-04, 05-08, ...; train on the other twelve), logistic regression at two strengths, then the best
setting again with every test speaker keeping only 2 emotions (adaptation must not fall below no adaptation there), and
speed-perturbed copies of the training actors (each (actor, factor) a speaker of its own; this script only).
These are inner-CV numbers on the development actors: they choose settings, they are not test numbers.
Writes results/rich_features_ravdess.json.

    SER_KIT_DATA=../shared/data nice python benchmarks/rich_features.py   # a folder holding ravdess-dev/
"""
import json, os, platform, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf, soxr
from ser_kit.data import load_corpus, load_audio
from ser_kit.features import extract_features, get_featureset, SR
from ser_kit.models import cross_validate, versions
from ser_kit.classical import EmotionRecognizer

sys.path.insert(0, str(Path(__file__).parent))
from adaptation import four_actor_folds  # noqa: E402  (the same folds as the adaptation benchmark)

FEATURESETS = ('default', 'rich')
ADAPT = (None, 'em', 'z')                 # 'z': plain per-speaker z-scoring, for comparison
CS = (0.01, 0.003)
SPEEDS = ((0.9, 1.1), (0.8, 0.9, 1.1, 1.2))   # speed factors of the perturbed training copies


def model(fs: str, adapt, C: float):
    "A factory of fresh classical models: feature set, adaptation, logreg strength."
    return lambda: EmotionRecognizer(featureset=fs, adapt=adapt, params=dict(C=C), n_jobs=1)


def extraction_seconds(m: pd.DataFrame) -> dict:
    "Seconds to featurise every clip on one core, no cache (then once more into the cache for the runs below)."
    out = {}
    for fs in FEATURESETS:
        extract_features(m['path'].head(4).tolist(), fs, n_jobs=1, cache=False, progress=False)    # warm up
        t = time.perf_counter(); extract_features(m, fs, n_jobs=1, cache=False, progress=False)
        out[fs] = round(time.perf_counter() - t, 1)
        extract_features(m, fs, n_jobs=1, progress=False)
        print(f"{fs}: {len(get_featureset(fs).compute(np.zeros(SR, np.float32))[0])} features, "
              f"{out[fs]} s for {len(m)} clips ({1000 * out[fs] / len(m):.1f} ms per clip)", flush=True)
    return out


def run(name: str, factory, m: pd.DataFrame, folds: list, **kw) -> dict:
    "One cross-validation, summarised and printed."
    r = cross_validate(factory, m, folds=folds, **kw)
    row = dict(config=name, uar=round(r['uar'], 4), uar_fold_std=round(r['uar_fold_std'], 4),
               per_fold=[round(f['uar'], 3) for f in r['per_fold']], n_files=r['n_files'], seconds=r['seconds'])
    print(f"{name:45s} UAR {row['uar']:.3f} (folds {row['per_fold']}, {r['seconds']:.0f} s)", flush=True)
    return row


def grid(m: pd.DataFrame, folds: list) -> list:
    "Every feature set x adaptation x C."
    return [dict(featureset=fs, adapt=str(a), C=C, **run(f"{fs} adapt={a} C={C}", model(fs, a, C), m, folds))
            for fs in FEATURESETS for C in CS for a in ADAPT]


def speed_copies(m: pd.DataFrame, factors: tuple) -> pd.DataFrame:
    "Rows of speed-perturbed copies of every clip (resampled by each factor), each (actor, factor) a new speaker."
    root = Path(os.environ.get('SER_KIT_SPEED_DIR', Path(tempfile.gettempdir()) / 'ser_kit_speed'))
    rows = []
    for f in factors:
        (root / str(f)).mkdir(parents=True, exist_ok=True)
        for _, r in m.iterrows():
            out = root / str(f) / Path(r['path']).name
            if not out.exists(): sf.write(out, soxr.resample(load_audio(r['path'], sr=SR), SR, SR / f), SR)
            rows.append(dict(r, path=str(out), speaker=f"{r['speaker']}x{f}", actor=r['speaker']))
    return pd.DataFrame(rows)


def speed_folds(m: pd.DataFrame, aug: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    "The manifest of originals + copies and the four-actor folds: train on both, test on original clips only."
    both = pd.concat([m.assign(actor=m['speaker']), aug], ignore_index=True)
    block = (both['actor'].astype(int).to_numpy() - 1) // 4; orig = np.arange(len(both)) < len(m)
    return both, [(np.flatnonzero(block != b), np.flatnonzero((block == b) & orig)) for b in sorted(set(block))]


def main():
    root = Path(os.environ.get('SER_KIT_DATA', '../shared/data'))
    rav = load_corpus(root / 'ravdess-dev').reset_index(drop=True)
    folds, t0 = four_actor_folds(rav), time.time()
    seconds = extraction_seconds(rav)
    table = grid(rav, folds)
    best = max((r for r in table if r['adapt'] == 'em'), key=lambda r: r['uar'])   # the shipped adaptation
    fs, C = best['featureset'], best['C']
    skew = [dict(featureset=f, adapt=str(a), C=c, skew=2,
                 **run(f"{f} adapt={a} C={c} skew=2", model(f, a, c), rav, folds, skew=2))
            for f, c in dict.fromkeys([(fs, C), ('default', 0.01)]) for a in ADAPT]
    speed = []
    for factors in SPEEDS:
        both, sfolds = speed_folds(rav, speed_copies(rav, factors))
        extract_features(both, fs, n_jobs=1, progress=False)
        for a, k in [(a, None) for a in ADAPT] + [(a, 2) for a in ADAPT]:
            name = f"{fs} adapt={a} C={C} + speed {factors}" + (f" skew={k}" if k else '')
            speed.append(dict(featureset=fs, adapt=str(a), C=C, speeds=list(factors), skew=k,
                              **run(name, model(fs, a, C), both, sfolds, skew=k)))
    res = dict(data=f"RAVDESS actors {', '.join(sorted(rav.speaker.unique()))} ({len(rav)} clips, 16 kHz)",
               protocol='inner CV: folds of 4 actors (01-04, 05-08, ...), train on 12, test on 4, UAR pooled',
               caveat='development-actor cross-validation: for choosing settings, not a test result',
               model="EmotionRecognizer(featureset=..., adapt=..., params=dict(C=...)): standard scaling + logreg",
               date=time.strftime('%Y-%m-%d'), extraction_seconds_one_core=seconds, grid=table,
               best=dict(featureset=fs, C=C, uar=best['uar']), skew=skew, speed_perturbation=speed,
               seconds=round(time.time() - t0, 1), versions=versions(),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count()))
    out = Path(__file__).parent / 'results' / 'rich_features_ravdess.json'
    out.write_text(json.dumps(res, indent=1, default=float)); print('written', out)


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
