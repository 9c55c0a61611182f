"""CNN on real RAVDESS, speaker-independent: protocol A = train actors 01-12, validate 13-14, test 15-16; protocol B (the
reverse) = train 05-16, validate 03-04, test 01-02. Prints UAR, training minutes, seconds per epoch and warm predict ms.
Usage: python benchmarks/cnn_ravdess.py ARCH EPOCHS [--protocols A B] [--threads 2] [--out cnn_ravdess.json]  (needs $SER_KIT_DATA)"""
import argparse, json, os, platform, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import numpy as np, torch
from ser_kit.data import load_corpus
from ser_kit.cnn import CNNRecognizer

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('arch'); ap.add_argument('epochs', type=int); ap.add_argument('--protocols', nargs='*', default=['A', 'B'])
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default='cnn_ravdess.json')
    a = ap.parse_args(); torch.set_num_threads(a.threads)
    df = load_corpus(Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev'); act = df.speaker.astype(int)
    protos = {'A': (act <= 14, ['13', '14'], act >= 15), 'B': (act >= 3, ['03', '04'], act <= 2)}
    rows = []
    for p in a.protocols:
        train, val, test = protos[p]
        rec = CNNRecognizer(arch=a.arch, epochs=a.epochs, patience=a.epochs, val_speakers=val, seed=a.seed, progress=False)
        t0 = time.time(); rec.fit(df[train]); minutes = (time.time() - t0) / 60
        uar = rec.score(df[test]); clip = df[test].path.iloc[0]; rec.predict_proba(clip)
        t = time.perf_counter()
        for _ in range(20): rec.predict_proba(clip)
        rows.append(dict(protocol=p, arch=a.arch, epochs=a.epochs, uar=round(uar, 3), train_min=round(minutes, 1),
                         s_per_epoch=round(float(np.mean([h.seconds.mean() for h in rec.history])), 1),
                         best_epoch=int(rec.history[0].val_uar.idxmax()) + 1, predict_ms=round((time.perf_counter() - t) / 20 * 1000, 1)))
        print(json.dumps(rows[-1]), flush=True)
    Path(a.out).write_text(json.dumps(dict(rows=rows, seed=a.seed, threads=a.threads, torch=torch.__version__,
                                           machine=platform.platform(), time=time.strftime('%Y-%m-%dT%H:%M:%S')), indent=1))

if __name__ == '__main__': main()
