"""Speed-perturbed speakers for the classical model: does adding training copies at other speeds help on unseen speakers?

Each training clip is also featurised played at each speed factor (pitch and tempo together); each (actor, factor) pair is
a training speaker of its own for the per-speaker normalisation, while what the adaptation learns about how speakers
differ comes from the real actors only (`EmotionRecognizer(speeds=...)`). Measured, for each set of factors: RAVDESS
actors in folds of four (all 8 emotions per test speaker, and 4 or 2 emotions each), every clip alone (no speaker known),
the EmoBox folds the data allows, and cross-corpus both ways (RAVDESS <-> EMO-DB, shared labels).
Writes results/speed_speakers_ravdess.json.

    SER_KIT_DATA=../shared/data python benchmarks/speed_speakers.py     # a folder holding ravdess-dev/ and emodb/
"""
import json, os, platform, sys, time, warnings
from pathlib import Path
import pandas as pd
sys.path.insert(0, str(Path(__file__).parent))
from adaptation import four_actor_folds                                   # the same folds as the adaptation study
from ser_kit.data import load_corpus, emobox_folds
from ser_kit.models import cross_validate, versions, uar
from ser_kit.classical import EmotionRecognizer

SPEEDS = {'none': [], '0.9, 1.1': [0.9, 1.1], '0.8 ... 1.2': [0.8, 0.9, 1.1, 1.2]}


def model(speeds, **kw):
    return lambda: EmotionRecognizer(speeds=speeds, n_jobs=2, **kw)


def alone(m, folds, speeds) -> float:
    "UAR when every test clip is predicted on its own (no speaker statistics)."
    t, p = [], []
    for tr, te in folds:
        rec = model(speeds)().fit(m.iloc[tr]); p += rec.predict(list(m.path.iloc[te])); t += list(m.emotion.iloc[te])
    return round(uar(t, p), 4)


def cross(train, test, speeds) -> float:
    shared = sorted(set(train.emotion) & set(test.emotion))
    rec = model(speeds, emotions=shared)().fit(train[train.emotion.isin(shared)])
    return round(rec.score(test[test.emotion.isin(shared)]), 4)


def main():
    root = Path(os.environ.get('SER_KIT_DATA', '../shared/data'))
    rav = load_corpus(root / 'ravdess-dev').reset_index(drop=True); folds = four_actor_folds(rav)
    emo = load_corpus(root / 'emodb').reset_index(drop=True) if (root / 'emodb').is_dir() else None
    rows, t0 = [], time.time()
    for name, sp in SPEEDS.items():
        t = time.time(); r = dict(speeds=name)
        for k in (8, 4, 2):
            r['all 8' if k == 8 else f'skew {k}'] = round(cross_validate(model(sp), rav, folds=folds,
                                                                           skew=None if k == 8 else k)['uar'], 4)
        r['one clip alone'] = alone(rav, folds, sp)
        r['emobox'] = round(cross_validate(model(sp), rav, protocol='emobox')['uar'], 4)
        if emo is not None: r['ravdess->emodb'], r['emodb->ravdess'] = cross(rav, emo, sp), cross(emo, rav, sp)
        r['minutes'] = round((time.time() - t) / 60, 1); rows.append(r); print(json.dumps(r), flush=True)
    print(pd.DataFrame(rows).to_string(index=False))
    res = dict(data=f"RAVDESS actors {', '.join(sorted(rav.speaker.unique()))} ({len(rav)} clips)"
                    + ('; EMO-DB' if emo is not None else ''),
               protocol='folds of 4 actors (01-04, 05-08, ...); skew k: each test speaker keeps k emotions, rotating; '
                        f'EmoBox: the {len(emobox_folds(rav))} folds with test actors present',
               model="EmotionRecognizer(speeds=...): 'rich' features, logreg C=0.01, adapt='em'",
               date=time.strftime('%Y-%m-%d'), table=rows, seconds=round(time.time() - t0, 1), versions=versions(),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count()))
    out = Path(__file__).parent / 'results' / 'speed_speakers_ravdess.json'
    out.write_text(json.dumps(res, indent=1)); print('written', out)


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
