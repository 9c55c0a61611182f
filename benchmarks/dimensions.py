"""Dimensional models on real speech: CCC of arousal, valence and intensity on unseen RAVDESS actors, with and without
per-speaker adaptation, and the category baseline (an emotion classifier's labels mapped through the table).

RAVDESS actors in folds of four (train on the others), `rich` features, SVR, 1000 speaker resamples for the intervals.
Writes results/dimensions_ravdess.json.

    SER_KIT_DATA=../shared/data python benchmarks/dimensions.py     # a folder holding ravdess-dev/
"""
import json, os, platform, sys, time, warnings
from datetime import date
from pathlib import Path
import numpy as np, pandas as pd
from ser_kit.data import load_corpus
from ser_kit.models import cross_validate, versions
from ser_kit.classical import EmotionRecognizer
from ser_kit.dimensions import DimensionRecognizer, cross_validate_dimensions, centroid_scores

N_BOOT = 1000


def four_actor_folds(m: pd.DataFrame) -> list:
    "Folds of four consecutive actors (01-04, 05-08, ...), positional indices."
    a = m['speaker'].astype(int).to_numpy(); blocks = sorted(set((a - 1) // 4))
    return [(np.flatnonzero((a - 1) // 4 != b), np.flatnonzero((a - 1) // 4 == b)) for b in blocks]


def rounded(scores: pd.DataFrame) -> dict:
    return {d: {k: round(float(v), 4) for k, v in r.items()} for d, r in scores.iterrows()}


def main():
    root = Path(os.environ.get('SER_KIT_DATA', '../shared/data'))
    src = root / 'ravdess-dev' if (root / 'ravdess-dev').is_dir() else root
    m = load_corpus(src).reset_index(drop=True); folds = four_actor_folds(m); t0 = time.time()
    out = dict(data=f"RAVDESS actors {', '.join(sorted(m.speaker.unique()))} ({len(m)} clips)",
               protocol='folds of 4 actors (01-04, 05-08, ...), pooled held-out predictions; CCC intervals: '
                        f'{N_BOOT} resamples of speakers, 95% percentile',
               date=date.today().isoformat(), model="DimensionRecognizer('svr', 'rich', adapt=...)", table=[])
    for a in ('z', None):
        r = cross_validate_dimensions(lambda: DimensionRecognizer(adapt=a, n_jobs=1), m, folds=folds, n_boot=N_BOOT)
        out['table'].append(dict(adapt=str(a), scores=rounded(r['scores'])))
        out['targets'] = r['targets']; print(a, r['scores'].round(3), flush=True)
    res = cross_validate(lambda: EmotionRecognizer('logreg', 'rich', adapt='z', speeds=[], n_jobs=1), m, folds=folds)
    C = pd.DataFrame(res['predictions'])
    base = centroid_scores(C.emotion, C.prediction, C.speaker, n_boot=N_BOOT)
    out['category_baseline'] = dict(model="EmotionRecognizer('logreg', 'rich', adapt='z', speeds=[])",
                                    uar=round(res['uar'], 4), scores=rounded(base))
    print(base.round(3), flush=True)
    out.update(seconds=round(time.time() - t0, 1), versions=versions(),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count()))
    dest = Path(__file__).parent / 'results' / 'dimensions_ravdess.json'; dest.parent.mkdir(exist_ok=True)
    tmp = dest.with_suffix('.tmp'); tmp.write_text(json.dumps(out, indent=1)); tmp.replace(dest)
    print(f"wrote {dest}")


if __name__ == '__main__':
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); main()
