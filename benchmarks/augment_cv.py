"""Waveform augmentation for the classical model: does one augmented copy per training clip help on unseen speakers?

The default classical model (`EmotionRecognizer()`: 'rich' features, logreg, adapt='em', speed copies 0.9 and 1.1) is
trained with and without `augment=KIND` for each kind of `ser_kit.augment.AUGMENTS` (noise, gain, pitch, stretch, reverb)
and with all five together. Each training clip gets one augmented copy per kind (its random settings from the model's
seed and the clip); each (actor, kind) pair is normalised as a speaker of its own, like the speed copies. Test clips are
never augmented. Protocol: RAVDESS actors 01-16, 4 folds of 4 held-out actors (01-04, 05-08, ...), UAR per fold.
Writes results/augment_cv.json.

    SER_KIT_DATA=../shared/data/ravdess-dev nice -n 10 python benchmarks/augment_cv.py
"""
import json, os, platform, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
from ser_kit.data import load_corpus
from ser_kit.models import cross_validate, versions
from ser_kit.classical import EmotionRecognizer
from ser_kit.augment import AUGMENTS

SEED = 0
CONFIGS = {'none': ()} | {k: (k,) for k in AUGMENTS} | {'all five': tuple(AUGMENTS)}


def four_actor_folds(m: pd.DataFrame) -> list:
    "Folds of four consecutive actors (01-04, 05-08, ...), positional indices."
    a = m['speaker'].astype(int).to_numpy(); blocks = sorted(set((a - 1) // 4))
    return [(np.flatnonzero((a - 1) // 4 != b), np.flatnonzero((a - 1) // 4 == b)) for b in blocks]


def main():
    src = os.environ.get('SER_KIT_DATA')
    if not src: sys.exit('set SER_KIT_DATA to a RAVDESS folder (actors 01-16), e.g. ../shared/data/ravdess-dev')
    rav = load_corpus(src).reset_index(drop=True); folds = four_actor_folds(rav)
    rows, t0 = [], time.time()
    for name, aug in CONFIGS.items():
        t = time.time()
        r = cross_validate(lambda: EmotionRecognizer(augment=aug, seed=SEED, n_jobs=1), rav, folds=folds)
        row = dict(augment=name, uar_per_fold=[round(f['uar'], 4) for f in r['per_fold']],
                   uar_fold_mean=round(r['uar_fold_mean'], 4), uar_pooled=round(r['uar'], 4),
                   wa_pooled=round(r['wa'], 4), minutes=round((time.time() - t) / 60, 1))
        rows.append(row); print(json.dumps(row), flush=True)
        write(rav, rows, t0, complete=len(rows) == len(CONFIGS))   # after every setting: a long run keeps its part
    print(pd.DataFrame(rows)[['augment', 'uar_fold_mean', 'delta_vs_none_mean', 'folds_better']].to_string(index=False))


def write(rav, rows, t0, complete):
    "Add the differences to 'none' and write results/augment_cv.json."
    base = np.array(rows[0]['uar_per_fold'])
    for row in rows:
        d = np.array(row['uar_per_fold']) - base
        row['delta_vs_none_per_fold'] = [round(float(x), 4) for x in d]
        row['delta_vs_none_mean'] = round(float(d.mean()), 4)
        row['folds_better'] = int((d > 0).sum())
    res = dict(data=f"RAVDESS actors {', '.join(sorted(rav.speaker.unique()))} ({len(rav)} clips, 16 kHz)",
               protocol='4 folds of 4 held-out actors (01-04, 05-08, 09-12, 13-16); UAR per fold, its mean, and pooled',
               model="EmotionRecognizer(augment=...): 'rich' features, logreg C=0.01, adapt='em', speeds 0.9 and 1.1",
               augmentations=dict(noise='white or pink noise, SNR uniform 10-30 dB', gain='1-6 dB up or down',
                                  pitch='0.5-2 semitones up or down (librosa.effects.pitch_shift)',
                                  stretch='rate 0.9-0.97 or 1.03-1.1 (librosa.effects.time_stretch)',
                                  reverb='synthetic exponential-decay room IR, RT60 0.2-0.8 s, wet 0.3-1.0 '
                                         '(scipy.signal.fftconvolve; no room-IR library)'),
               settings=dict(copies_per_kind=1, copy_speakers='(actor, kind) normalised as its own speaker',
                             test_clips_augmented=False, n_jobs=1),
               seed=SEED, date=time.strftime('%Y-%m-%d'), complete=complete, table=rows,
               seconds=round(time.time() - t0, 1),
               versions=versions('librosa', 'scipy'),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count(), shared=True))
    out = Path(__file__).parent / 'results' / 'augment_cv.json'
    out.write_text(json.dumps(res, indent=1)); print('written', out, flush=True)


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
