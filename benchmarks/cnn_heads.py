"""The CNN's classifier on top, varied alone: the same networks' vectors, other ways to read them.

Reads the vectors `cnn_speed_speakers.py --dump DIR` wrote (each fold's training clips with their speed copies, and
its test clips), refits the speaker-normalised classifier a few ways and scores each on the fold's test actors, whose
clips are grouped by speaker (never their labels), as `CNNRecognizer.predict` does. Its first rows reproduce the
benchmark's `cnn_first3` / `cnn` figures to the last digit (the check that the study reads what the model reads).
Rows: the default; the classifier's C (`HEAD_C`, 0.1) at 0.03 and 0.3; the E-step's hedge (`HEAD_BALANCE`, 0.5) at
0.25 and 0.75; one classifier per network, their probabilities averaged, instead of one on all networks' vectors side by
side; plain z-scoring, and z-scoring followed by shrinkage LDA instead of the logistic regression.

    python benchmarks/cnn_heads.py DIR [--networks 3 5] [--out FILE]      # a few seconds per row and fold

Run it with the thread count of the run that wrote the vectors (the default: all cores): the logistic regression's sums
depend on it in the last bits, and the E-step can turn such a difference into another answer for a clip or two.
"""
import argparse, glob, json, os, platform, sys, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from recorded import recorded_settings
import numpy as np
import ser_kit.cnn as cnn_module
from ser_kit.adapt import SpeakerNorm
from ser_kit.cnn import CNNRecognizer
from ser_kit.evaluation import uar
from ser_kit.models import versions


def columns(d, nets):
    "The columns of the vectors that the networks `nets` (positions in the ensemble) produced."
    D = d['E'].shape[1] // int(d['n_networks'])
    return np.concatenate([np.arange(i * D, (i + 1) * D) for i in nets])


def head(d, nets, adapt='em', C=None, balance=None):
    "Probabilities of the test clips from the library's classifier fitted on the networks `nets` (settings patched)."
    cols = columns(d, nets); r = CNNRecognizer(adapt=adapt); r.labels = [str(l) for l in d['labels']]
    r.head_data_ = dict(E=d['E'][:, cols], y=d['y'], spk=d['spk'], voice=d['voice'])
    saved = cnn_module.HEAD_C, cnn_module.HEAD_BALANCE
    cnn_module.HEAD_C = saved[0] if C is None else C
    cnn_module.HEAD_BALANCE = saved[1] if balance is None else balance
    try: r._fit_head()
    finally: cnn_module.HEAD_C, cnn_module.HEAD_BALANCE = saved
    return r._head_proba(d['E_test'][:, cols], d['spk_test'])


def z_lda(d, nets):
    "Each speaker z-scored (test speakers with their own unlabelled clips), then shrinkage LDA."
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    cols = columns(d, nets); E, Et = d['E'][:, cols], d['E_test'][:, cols]
    emo = d['labels'][d['y']]; norm = SpeakerNorm('z').fit(E, emo, d['spk'])
    Z = norm.train_transform(E, emo, d['spk']); m, s = Z.mean(0), Z.std(0) + 1e-8
    clf = LinearDiscriminantAnalysis(solver='lsqr', shrinkage='auto').fit((Z - m) / s, d['y'])
    return clf.predict_proba((norm.transform(Et, d['spk_test']) - m) / s)


def variants(K):
    "(row name, function of a fold's vectors -> test probabilities) for the first K networks."
    nets = list(range(K))
    return [(f'first{K} default', lambda d: head(d, nets)),
            *[(f'first{K} C={c}', lambda d, c=c: head(d, nets, C=c)) for c in (0.03, 0.3)],
            *[(f'first{K} balance={b}', lambda d, b=b: head(d, nets, balance=b)) for b in (0.25, 0.75)],
            (f'first{K} one classifier per network, averaged', lambda d: np.mean([head(d, [i]) for i in nets], 0)),
            (f'first{K} z', lambda d: head(d, nets, adapt='z')),
            (f'first{K} z + shrinkage LDA', lambda d: z_lda(d, nets))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('dump', help='the folder cnn_speed_speakers.py --dump wrote')
    ap.add_argument('--networks', type=int, nargs='*', default=[3, 5], help='read the first K networks of each fold')
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'cnn_heads.json'))
    a = ap.parse_args(); t0 = time.time()
    folds = [dict(np.load(f)) for f in sorted(glob.glob(str(Path(a.dump) / 'fold*.npz')))]
    if not folds: sys.exit(f"cnn_heads.py: error: {a.dump}: no fold*.npz (run cnn_speed_speakers.py --dump first)")
    rows = {}
    for K in a.networks:
        if K > min(int(d['n_networks']) for d in folds): continue
        for name, fn in variants(K):
            s = [round(float(uar(d['labels'][d['y_test']], d['labels'][fn(d).argmax(1)])), 4) for d in folds]
            rows[name] = dict(folds=s, mean=round(float(np.mean(s)), 4)); print(f'{name:48s} {np.mean(s):.4f} {s}')
    res = dict(data=f'the vectors of {a.dump} ({len(folds)} folds)', settings=recorded_settings(a), date=time.strftime('%Y-%m-%d'),
               defaults=dict(HEAD_C=cnn_module.HEAD_C, HEAD_BALANCE=cnn_module.HEAD_BALANCE), uar=rows,
               seconds=round(time.time() - t0), versions=versions(),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count()))
    Path(a.out).write_text(json.dumps(res, indent=1)); print(f'written {a.out}')


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
