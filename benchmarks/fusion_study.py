"""The fusion's choices studied on stored member probabilities: no network is trained here.

Reads the `.npz` files `cnn_speed_speakers.py --both --fusion --dump-probs DIR` writes (each fold's test actors and, as
`fit_with_cnn` tunes, its validation actors, with 8, 4 or 2 emotions a speaker) and scores, on the same networks:
- the weight as shipped (validation log-likelihood, every emotion), chosen on the validation actors pooled with their
  4- and 2-emotion copies (`pooled`), or on those copies alone (`skew`); log-linear pooling (`geo`: the library's
  `pool='log'`, its weight chosen as `FusionRecognizer.tune` chooses it);
- with `--pseudo`, the classical member refitted on its training rows plus each test speaker's most confident clips,
  labelled by a prediction (never by their labels): per speaker and predicted emotion the share `q` of its clips the
  prediction is surest of. The labels come from the classical member itself (`self`: self-training) or from the
  fusion (`co`: the CNN teaches the classical model); the refitted member is fused again with the same weight.
  The classical member is retrained here as the benchmark trained it (its features cached) and checked against the
  stored probabilities first.

    SER_KIT_DATA=../shared/data python benchmarks/fusion_study.py DIR [--pseudo] [--out FILE]
"""
import argparse, glob, json, os, platform, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, str(Path(__file__).parent))
from adaptation import four_actor_folds
from ser_kit.data import load_corpus, emobox_folds
from ser_kit.models import uar, versions
from ser_kit.fusion import weight_curve, choose_weight, pool_probs
from ser_kit.classical import EmotionRecognizer

QS = (0.5, 1.0)   # shares of each speaker's clips (per predicted emotion) taken as pseudo-labelled


def fuse(Pc, Pn, w, geo=False):
    "The weighted mean of the members' probabilities (or their weighted log-linear pool), as the library pools them."
    return pool_probs([Pc, Pn], [1 - w, w], 'log' if geo else 'linear')


def confident(P, ids, q):
    "Mask: for each speaker and each emotion predicted for them, the share `q` of those clips with the surest top class."
    keep = np.zeros(len(P), bool); conf, lab = P.max(1), P.argmax(1)
    for s in set(ids):
        g = np.flatnonzero(ids == s)
        for c in set(lab[g]):
            h = g[lab[g] == c]; keep[h[np.argsort(-conf[h])[:max(1, int(round(q * len(h))))]]] = True
    return keep


def trained_rows(train):
    "The default classical model trained on `train`, and the rows (normalised, speed copies) its classifier saw."
    cap, orig = {}, EmotionRecognizer._new_pipeline
    def capturing(self):
        p = orig(self); fit = p.fit
        def keep(X, y, **kw): cap['X'], cap['y'] = X, y; return fit(X, y, **kw)
        p.fit = keep; return p
    EmotionRecognizer._new_pipeline = capturing
    try: rec = EmotionRecognizer(n_jobs=2).fit(train)
    finally: EmotionRecognizer._new_pipeline = orig
    return rec, cap['X'], cap['y']   # the last fit is the adapted classifier's


def refit_proba(rec, Xtr, ytr, X, ids, P, q):
    "The classical member's probabilities after a refit on its rows plus the confident clips labelled by `P`."
    keep, base = confident(P, ids, q), rec.pipeline_
    Z = rec._adapted(X, ids)
    rec.pipeline_ = rec._new_pipeline().fit(np.vstack([Xtr, Z[keep]]),
                                            np.concatenate([ytr, np.asarray(rec.labels)[P.argmax(1)][keep]]))
    try: return rec._speaker_proba(X, ids)
    finally: rec.pipeline_ = base


def load_probs(path, rav) -> dict:
    "A dump of `cnn_speed_speakers.py --dump-probs` (`.npz`), its clips' file names resolved against the corpus."
    z = np.load(path, allow_pickle=False); where = dict(zip(rav.path.map(lambda q: Path(q).name), rav.path))
    d = dict(labels=[str(l) for l in z['labels']], weight=float(z['weight']), temperature=float(z['temperature']))
    for s in {k.rsplit('_', 1)[0] for k in z.files if k.startswith(('test', 'val')) and k.endswith('_Pc')}:
        d[s] = dict(Pc=z[f'{s}_Pc'].astype(float), Pn=z[f'{s}_Pn'].astype(float), y=[str(e) for e in z[f'{s}_y']],
                    spk=[str(e) for e in z[f'{s}_spk']], paths=[where[f] for f in z[f'{s}_files']])
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('dir'); ap.add_argument('--pseudo', action='store_true')
    ap.add_argument('--protocol', default='four', choices=['four', 'emobox'])
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'fusion_study.json'))
    a = ap.parse_args(); t0 = time.time()
    rav = load_corpus(Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev').reset_index(drop=True)
    folds = four_actor_folds(rav) if a.protocol == 'four' else emobox_folds(rav)
    rows = []
    for f in sorted(glob.glob(f'{a.dir}/fold*.npz')):
        k = int(Path(f).stem[4:]); d = load_probs(f, rav); L = d['labels']
        y_of = lambda s: np.array([L.index(e) for e in d[s]['y']])
        def curve(sets, pool='linear'):
            return weight_curve(np.vstack([d[s]['Pc'] for s in sets]), np.vstack([d[s]['Pn'] for s in sets]),
                                np.concatenate([y_of(s) for s in sets]), pool=pool)
        ws = dict(ship=choose_weight(curve(['val8'])), pooled=choose_weight(curve(['val8', 'val4', 'val2'])),
                  skew=choose_weight(curve(['val4', 'val2'])))
        assert abs(ws['ship'] - d['weight']) < 1e-9, 'the shipped weight is not reproduced'
        gw = choose_weight(curve(['val8'], 'log'))       # FusionRecognizer(pool='log').tune: the same choice
        r = dict(fold=k) | {f'w_{n}': w for n, w in ws.items()} | dict(w_geo=gw)
        if a.pseudo: rec, Xtr, ytr = trained_rows(rav.iloc[folds[k][0]])
        for n in (8, 4, 2):
            t = d[f'test{n}']; y = y_of(f'test{n}'); sfx = '' if n == 8 else f'_skew{n}'
            r[f'classical{sfx}'], r[f'cnn{sfx}'] = uar(y, t['Pc'].argmax(1)), uar(y, t['Pn'].argmax(1))
            for name, w in ws.items(): r[f'fusion_{name}{sfx}'] = uar(y, fuse(t['Pc'], t['Pn'], w).argmax(1))
            r[f'fusion_geo{sfx}'] = uar(y, fuse(t['Pc'], t['Pn'], gw, True).argmax(1))
            if not a.pseudo: continue
            ids, X = np.asarray(t['spk'], dtype=object), rec.features(t['paths']).to_numpy()
            assert np.allclose(rec._speaker_proba(X, ids), t['Pc'], atol=1e-6), 'the classical member is not reproduced'
            for teacher, P in (('self', t['Pc']), ('co', fuse(t['Pc'], t['Pn'], ws['ship']))):
                for q in QS:
                    Pc2 = refit_proba(rec, Xtr, ytr, X, ids, P, q)
                    r[f'{teacher}{q}_classical{sfx}'] = uar(y, Pc2.argmax(1))
                    r[f'{teacher}{q}_fusion{sfx}'] = uar(y, fuse(Pc2, t['Pn'], ws['ship']).argmax(1))
        rows.append(r); print(json.dumps({m: round(v, 4) if isinstance(v, float) else v for m, v in r.items()}),
                              flush=True)
    df = pd.DataFrame(rows).set_index('fold')
    res = dict(source=str(a.dir), protocol=a.protocol, date=time.strftime('%Y-%m-%d'), pseudo_shares=QS,
               mean=df.mean().round(4).to_dict(), folds=[{m: round(v, 4) if isinstance(v, float) else v
                                                           for m, v in r.items()} for r in rows],
               seconds=round(time.time() - t0), versions=versions(),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count()))
    Path(a.out).write_text(json.dumps(res, indent=1)); print(df.mean().round(4).to_string())


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
