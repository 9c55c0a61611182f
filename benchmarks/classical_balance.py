"""The default classical model with its speaker normalisation's E-step hedged toward a balanced speaker (`balance`).

`SpeakerNorm(balance=b)` blends each E-step posterior with "every emotion equally often": 0 trusts the classifier
(the classical default), 1 makes a speaker's offset their plain mean. One model is trained per fold (RAVDESS actors
01-16 in folds of four), then its fitted normalisation is read with each `balance` (the setting acts at prediction
only), on the test speakers with every emotion, and with each test speaker keeping 4 or 2 emotions (`skew_rows`).
Writes results/classical_balance_ravdess.json.

    SER_KIT_DATA=../shared/data python benchmarks/classical_balance.py
"""
import json, os, platform, sys, time, warnings
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).parent))
from adaptation import four_actor_folds
from cnn_adapt_cv import scored
from ser_kit.data import load_corpus
from ser_kit.classical import EmotionRecognizer
from ser_kit.models import versions, skew_rows

BALANCES = (0.0, 0.25, 0.5, 0.75, 1.0)


def main():
    rav = load_corpus(Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev').reset_index(drop=True)
    everyone, rows, t0 = sorted(rav.speaker.astype(str).unique()), [], time.time()
    for k, (tr, te) in enumerate(four_actor_folds(rav)):
        test = rav.iloc[te]; m = EmotionRecognizer(n_jobs=1).fit(rav.iloc[tr])
        tests = {'all 8': test} | {f'skew {n}': test[skew_rows(test, m.labels, n, everyone)] for n in (4, 2)}
        for b in BALANCES:
            m.norm_.balance = b
            rows.append(dict(fold=k, balance=b) | {name: scored(m, t) for name, t in tests.items()})
            print(json.dumps(rows[-1]), flush=True)
    table = [dict(balance=b) | {c: round(float(np.mean([r[c] for r in rows if r['balance'] == b])), 4)
                                for c in ('all 8', 'skew 4', 'skew 2')} for b in BALANCES]
    res = dict(data=f"RAVDESS actors 01-16 ({len(rav)} clips)", protocol='folds of 4 actors (01-04, 05-08, ...); '
               'skew k: each test speaker keeps k emotions, rotating',
               model="EmotionRecognizer() (the default: 'rich', logreg, adapt='em', speed-perturbed speakers)",
               date=time.strftime('%Y-%m-%d'), table=table, folds=rows,
               seconds=round(time.time() - t0), versions=versions(),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count()))
    out = Path(__file__).parent / 'results' / 'classical_balance_ravdess.json'
    out.write_text(json.dumps(res, indent=1)); print(json.dumps(table, indent=1))


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
