"""The CNN trained on speed-perturbed copies of its training actors, each copy a speaker of its own, on unseen actors.

The route the team's notes name as the untried one for the deep model: resample every training clip by a few factors
(Kaldi-style speed perturbation: tempo and pitch move together), treat each (actor, factor) pair as a new speaker (its
own band means for the speaker-adaptive input), and train the default CNN on all of them. RAVDESS actors 01-16 in folds
of four (01-04, 05-08, ...). In each fold the validation actors (the same two `choose_val_speakers` picks for the plain
CNN) are held out with all their copies, so early stopping never sees a copy of a training voice; the test actors are
used for nothing but the score, their clips grouped by speaker (unlabelled) for adaptation.
Writes results/cnn_speed_speakers_ravdess.json.

    SER_KIT_DATA=../shared/data python benchmarks/cnn_speed_speakers.py [--speeds 0.9 1.1] [--epochs 30] [--threads 2]
"""
import argparse, json, os, platform, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf, soxr, torch
sys.path.insert(0, str(Path(__file__).parent))
from adaptation import four_actor_folds
from cnn_adapt_cv import scored
from ser_kit.data import load_corpus
from ser_kit.models import versions, choose_val_speakers
from ser_kit.cnn import CNNRecognizer


def speed_copies(train: pd.DataFrame, speeds: list, dest: Path) -> pd.DataFrame:
    "The training manifest plus one resampled copy of each clip per factor; a copy's speaker is '<actor>x<factor>'."
    rows = [train]
    for f in speeds:
        out = []
        for r in train.itertuples():
            p = dest / f"{f}" / Path(r.path).name
            if not p.exists():
                y, sr = sf.read(r.path, dtype='float32')
                p.parent.mkdir(parents=True, exist_ok=True)
                sf.write(p, soxr.resample(y, sr * f, sr), sr, subtype='PCM_16')   # played back at sr: f times faster
            out.append(r._asdict() | dict(path=str(p), speaker=f"{r.speaker}x{f}"))
        rows.append(pd.DataFrame(out).drop(columns='Index'))
    return pd.concat(rows, ignore_index=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--speeds', type=float, nargs='*', default=[0.9, 1.1])
    ap.add_argument('--epochs', type=int, default=30); ap.add_argument('--adapt', default='speaker')
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--folds', type=int, nargs='*', default=[0, 1, 2, 3])
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'cnn_speed_speakers_ravdess.json'))
    a = ap.parse_args(); torch.set_num_threads(a.threads)
    rav = load_corpus(Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev').reset_index(drop=True)
    rows, t0 = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for k, (tr, te) in enumerate(four_actor_folds(rav)):
            if k not in a.folds: continue
            train, test = rav.iloc[tr], rav.iloc[te]; t = time.time()
            val = choose_val_speakers(train, 0.15, 0)                       # the plain CNN's validation actors
            big = speed_copies(train[~train.speaker.isin(val)], a.speeds, Path(tmp))
            big = pd.concat([big, train[train.speaker.isin(val)]], ignore_index=True)
            cnn = CNNRecognizer(epochs=a.epochs, adapt=a.adapt, val_speakers=val, n_jobs=1).fit(big)
            r = dict(fold=k, test_speakers=sorted(set(test.speaker)), val_speakers=val, train_clips=len(big),
                     cnn=scored(cnn, test), minutes=round((time.time() - t) / 60, 1),
                     best_epoch=int(cnn.history_.epoch[cnn.history_.val_uar.idxmax()]))
            rows.append(r); print(json.dumps(r), flush=True)
    res = dict(data=f"RAVDESS actors 01-16 ({len(rav)} clips)",
               protocol='folds of 4 actors; 2 training actors (and no copy of them) validate',
               settings=vars(a), date=time.strftime('%Y-%m-%d'), uar=round(float(np.mean([r['cnn'] for r in rows])), 4),
               folds=rows, seconds=round(time.time() - t0), versions=versions('torch'),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count(), threads=a.threads))
    Path(a.out).write_text(json.dumps(res, indent=1)); print(json.dumps(res, indent=1))


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
