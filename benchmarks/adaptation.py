"""Speaker adaptation on real speech: adapted vs unadapted, with every test speaker keeping 8, 4, 3 or 2 emotions.

RAVDESS actors in folds of four (train on the others, `default` features, logistic regression), the EmoBox folds your data
allows, and cross-corpus both ways (RAVDESS <-> EMO-DB, on their shared labels). Writes results/adaptation_ravdess.json.

    SER_KIT_DATA=../shared/data python benchmarks/adaptation.py     # a folder holding ravdess-dev/ and emodb/wav/
"""
import json, os, platform, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
from ser_kit.data import load_corpus, emobox_folds
from ser_kit.models import cross_validate, versions, uar
from ser_kit.classical import EmotionRecognizer

ADAPT = (None, 'z', 'em')
SKEWS = (8, 4, 3, 2, 1)


def four_actor_folds(m: pd.DataFrame) -> list:
    "Folds of four consecutive actors (01-04, 05-08, ...), positional indices."
    a = m['speaker'].astype(int).to_numpy(); blocks = sorted(set((a - 1) // 4))
    return [(np.flatnonzero((a - 1) // 4 != b), np.flatnonzero((a - 1) // 4 == b)) for b in blocks]


def model(adapt):
    return lambda: EmotionRecognizer(adapt=adapt, n_jobs=1)


def skew_table(m: pd.DataFrame, folds: list) -> list:
    rows = []
    for a in ADAPT:
        for k in SKEWS:
            r = cross_validate(model(a), m, folds=folds, skew=None if k == 8 else k)
            rows.append(dict(adapt=str(a), skew=k, uar=round(r['uar'], 4), n_files=r['n_files']))
            print(f"adapt={str(a):5s} skew={k}: UAR {r['uar']:.3f} ({r['n_files']} clips)", flush=True)
    return rows


def every_clip_alone(m: pd.DataFrame, folds: list) -> dict:
    "UAR when no speaker is known: every test clip is predicted on its own (the training speakers' statistics)."
    out = {}
    for a in ADAPT:
        t, p = [], []
        for tr, te in folds:
            rec = model(a)().fit(m.iloc[tr]); p += rec.predict(list(m.path.iloc[te])); t += list(m.emotion.iloc[te])
        out[str(a)] = round(uar(t, p), 4); print(f"adapt={str(a):5s} every clip alone: UAR {out[str(a)]:.3f}", flush=True)
    return out


def cross_corpus(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    shared = sorted(set(train.emotion) & set(test.emotion))
    out = {}
    for a in ADAPT:
        rec = EmotionRecognizer(adapt=a, emotions=shared, n_jobs=1).fit(train[train.emotion.isin(shared)])
        out[str(a)] = round(rec.score(test[test.emotion.isin(shared)]), 4)
    return dict(shared_labels=shared, uar=out)


def main():
    root = Path(os.environ.get('SER_KIT_DATA', '../shared/data'))
    rav = load_corpus(root / 'ravdess-dev').reset_index(drop=True)
    t0 = time.time()
    table = skew_table(rav, four_actor_folds(rav)); alone = every_clip_alone(rav, four_actor_folds(rav))
    ebox = {str(a): round(cross_validate(model(a), rav, protocol='emobox')['uar'], 4) for a in ADAPT}
    n_ebox = len(emobox_folds(rav)); print('EmoBox folds', n_ebox, ebox)
    xc = {}
    if (root / 'emodb').is_dir():
        emo = load_corpus(root / 'emodb').reset_index(drop=True)
        xc = {'ravdess->emodb': cross_corpus(rav, emo), 'emodb->ravdess': cross_corpus(emo, rav)}
        print(xc)
    wide = pd.DataFrame(table).pivot(index='adapt', columns='skew', values='uar')[list(SKEWS)]
    print(wide.round(3).to_string())
    res = dict(data=f"RAVDESS actors {', '.join(sorted(rav.speaker.unique()))} ({len(rav)} clips)",
               protocol='folds of 4 actors (01-04, 05-08, ...); each test speaker keeps k emotions, rotating',
               date=time.strftime('%Y-%m-%d'), model="EmotionRecognizer(adapt=...): 'default' features, logreg C=0.01",
               table=[dict(adapt=a, **{f'skew {k}' if k < 8 else 'all 8': wide.loc[a, k] for k in SKEWS},
                           **{'one clip alone': alone[a]}) for a in wide.index],
               emobox=dict(folds=n_ebox, uar=ebox), cross_corpus=xc, seconds=round(time.time() - t0, 1),
               versions=versions(), machine=dict(python=platform.python_version(), cpus=os.cpu_count()))
    out = Path(__file__).parent / 'results' / 'adaptation_ravdess.json'
    out.write_text(json.dumps(res, indent=1, default=float)); print('written', out)


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
