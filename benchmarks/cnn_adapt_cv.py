"""The CNN with and without speaker-adaptive input, alone and fused with the classical model, on unseen RAVDESS actors.

RAVDESS actors 01-16 in folds of four (01-04, 05-08, ...; the same folds as benchmarks/adaptation.py). In each fold the
CNN trains on the other 12 actors, holding out two of them (chosen by `choose_val_speakers`) for early stopping; the
fusion (`FusionRecognizer.fit_with_cnn`) chooses its weight and temperature on those same two validation actors, then
retrains its classical member (the default `EmotionRecognizer()`) on all 12. The test actors are used for nothing but the
score. Test predictions group clips by speaker (the adaptive models use them, never their labels).
Writes results/cnn_adapt_cv_ravdess.json.

    SER_KIT_DATA=../shared/data python benchmarks/cnn_adapt_cv.py [--epochs 60] [--models 1] [--adapt none speaker]
"""
import argparse, json, os, platform, sys, time, warnings
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, str(Path(__file__).parent))
from recorded import recorded_settings
from adaptation import four_actor_folds
from ser_kit.data import load_corpus
from ser_kit.models import versions, uar
from ser_kit.cnn import CNNRecognizer
from ser_kit.fusion import FusionRecognizer


def scored(rec, te, by_speaker: bool = True) -> float:
    "UAR of `rec` on the clips of `te`, grouped by their speaker (unlabelled), or each clip alone (no speaker known)."
    P, ok, _ = rec.predict_proba_batch(list(te.path), list(te.speaker) if by_speaker else None)
    truth = dict(zip(te.path, te.emotion))
    return round(uar([truth[p] for p in ok], [rec.labels[i] for i in P.argmax(1)]), 4)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=60); ap.add_argument('--models', type=int, default=1)
    ap.add_argument('--adapt', nargs='*', default=['none', 'speaker']); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'cnn_adapt_cv_ravdess.json'))
    a = ap.parse_args(); torch.set_num_threads(a.threads)
    rav = load_corpus(Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev').reset_index(drop=True)
    rows, t0 = [], time.time()
    for adapt in a.adapt:
        for k, (tr, te) in enumerate(four_actor_folds(rav)):
            train, test = rav.iloc[tr], rav.iloc[te]; t = time.time()
            cnn = CNNRecognizer(epochs=a.epochs, n_models=a.models, adapt=adapt, n_jobs=1).fit(train)
            cnn_min = (time.time() - t) / 60; t = time.time()
            fused = FusionRecognizer(n_jobs=2).fit_with_cnn(cnn, train)
            r = dict(adapt=adapt, fold=k, test_speakers=sorted(set(test.speaker)), val_speakers=cnn.val_speakers_,
                     cnn=scored(cnn, test), classical=scored(fused.members[0], test), fusion=scored(fused, test),
                     weight=fused.weight_, temperature=fused.temperature_, cnn_minutes=round(cnn_min, 1),
                     fusion_extra_minutes=round((time.time() - t) / 60, 1),
                     best_epochs=[int(h.epoch[h.val_uar.idxmax()]) for h in cnn.network_histories().values()])
            rows.append(r); print(json.dumps(r), flush=True)
    summary = {ad: {m: round(float(np.mean([r[m] for r in rows if r['adapt'] == ad])), 4)
                    for m in ('cnn', 'classical', 'fusion', 'cnn_minutes')} for ad in a.adapt}
    print(json.dumps(summary, indent=1))
    res = dict(data=f"RAVDESS actors 01-16 ({len(rav)} clips)", protocol='folds of 4 actors; 2 training actors validate',
               settings=recorded_settings(a), date=time.strftime('%Y-%m-%d'), summary=summary, folds=rows,
               seconds=round(time.time() - t0), versions=versions('torch'),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count(), threads=a.threads))
    Path(a.out).write_text(json.dumps(res, indent=1)); print('written', a.out)


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
