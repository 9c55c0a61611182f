"""UAR of the classical models on real speech, speaker-independent: RAVDESS-dev in EmoBox folds of 4 actors, EMO-DB
leave-one-speaker-out. Compares the seed-004 recipe (193 means + SVC) with ser_kit's default model and other estimators.
Usage: python benchmarks/classical_realdata.py [--runs NAME ...] [--out results.json]   (needs $SER_KIT_DATA)"""
import argparse, json, os, platform, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
from ser_kit.data import load_corpus, emobox_folds
from ser_kit.classical import EmotionRecognizer
from ser_kit.models import cross_validate, versions

RUNS = {  # name -> (featureset, estimator, params)
    'seed004 recipe (SVC C=1)': ('seed004', 'svc', dict(C=1.0, class_weight=None)),
    'default + logreg (default model)': ('default', 'logreg', {}),
    'default + svc': ('default', 'svc', {}),
    'default + rf': ('default', 'rf', {}),
    'default + knn': ('default', 'knn', {}),
}

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--runs', nargs='*', default=list(RUNS)); ap.add_argument('--out', default='classical_realdata.json')
    a = ap.parse_args()
    root = Path(os.environ.get('SER_KIT_DATA', '../shared/data'))
    corpora = {'ravdess-dev': root / 'ravdess-dev', 'emodb': root / 'emodb' / 'wav'}
    rows = []
    for corpus, src in corpora.items():
        if not src.is_dir(): print(f"skipping {corpus}: {src} not found"); continue
        m = load_corpus(src)
        folds = emobox_folds(m) if corpus == 'ravdess-dev' else m.speaker.nunique()
        for name in a.runs:
            fs, est, params = RUNS[name]
            r = cross_validate(lambda: EmotionRecognizer(est, fs, params=params, n_jobs=-1), m, 'speaker', folds=folds)
            rows.append(dict(corpus=corpus, run=name, uar=round(r['uar'], 3), wa=round(r['wa'], 3), macro_f1=round(r['macro_f1'], 3),
                             folds=r['folds'], n_files=r['n_files'], seconds=r['seconds']))
            print(json.dumps(rows[-1]), flush=True)
    Path(a.out).write_text(json.dumps(dict(rows=rows, seed=0, versions=versions(), machine=platform.platform(),
                                           cpus=os.cpu_count(), time=time.strftime('%Y-%m-%dT%H:%M:%S')), indent=1))
    import pandas as pd
    if rows: print(pd.DataFrame(rows).pivot(index='run', columns='corpus', values='uar').to_string())

if __name__ == '__main__': main()
