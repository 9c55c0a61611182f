"""Several classical models averaged: does an ensemble of estimators and feature sets beat the default alone?

Members, each a speaker-adaptive `EmotionRecognizer` (adapt='em', speed copies), differing in one setting: the default
(logreg on 'rich'), an RBF SVM on 'rich', logreg on 'default', and an MLP on 'rich'. Every combination of members is
scored by averaging their probabilities with equal weights (no weight is tuned, so nothing is chosen on test speakers).
Protocol: RAVDESS actors 01-16, 4 folds of 4 held-out actors (01-04, 05-08, ...), UAR per fold; test clips grouped by
speaker for adaptation, labels never read. Writes results/classical_ensemble_ravdess.json.

    SER_KIT_DATA=../shared/data python benchmarks/classical_ensemble.py
"""
import itertools, json, os, platform, sys, time, warnings
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).parent))
from adaptation import four_actor_folds
from ser_kit.data import load_corpus
from ser_kit.models import uar, versions
from ser_kit.classical import EmotionRecognizer

MEMBERS = {'logreg-rich (default)': dict(), 'svc-rich': dict(estimator='svc'),
           'logreg-default': dict(featureset='default'), 'mlp-rich': dict(estimator='mlp')}


def main():
    warnings.filterwarnings('ignore')
    rav = load_corpus(Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev').reset_index(drop=True)
    probs, folds, t0 = {n: [] for n in MEMBERS}, [], time.time()
    for k, (tr, te) in enumerate(four_actor_folds(rav)):
        train, test = rav.iloc[tr], rav.iloc[te]
        for name, kw in MEMBERS.items():
            rec = EmotionRecognizer(n_jobs=1, seed=0, **kw).fit(train)
            P, ok, _ = rec.predict_proba_batch(list(test.path), list(test.speaker))
            assert ok == list(test.path), 'every RAVDESS test clip is readable'
            probs[name].append(P)
        folds.append((list(test.emotion), rec.labels))
    rows = []
    for r in range(1, len(MEMBERS) + 1):
        for combo in itertools.combinations(MEMBERS, r):
            per = [uar(truth, [labels[i] for i in (sum(probs[n][k] for n in combo) / r).argmax(1)])
                   for k, (truth, labels) in enumerate(folds)]
            rows.append(dict(members=list(combo), uar=round(float(np.mean(per)), 4), folds=[round(u, 3) for u in per]))
            print(f"{' + '.join(combo):70s} {np.mean(per):.3f} {np.round(per, 3)}", flush=True)
    res = dict(data='RAVDESS actors 01-16 (960 clips)', protocol='4 folds of 4 held-out actors (01-04, 05-08, ...)',
               settings=dict(members=MEMBERS, fusion='equal-weight average of probabilities', seed=0, adapt='em'),
               date=time.strftime('%Y-%m-%d'), seconds=round(time.time() - t0), rows=rows,
               versions=versions('librosa', 'scipy'), machine=dict(python=platform.python_version(), cpus=os.cpu_count()))
    out = Path(__file__).parent / 'results' / 'classical_ensemble_ravdess.json'
    out.write_text(json.dumps(res, indent=1)); print('written to', out)


if __name__ == '__main__': main()
