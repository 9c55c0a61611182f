"""Unseen speakers' clips altered as real recordings are: a DC offset, a gain, telephone bandwidth.

Trains the default classical model on RAVDESS actors 01-12, then predicts actors 13-16 (never heard) through
`predict_table` with their speakers, once as recorded and once per alteration (written to a temporary folder, never
beside the corpus). A robust model answers the altered clips about as well as the originals.

    SER_KIT_DATA=../shared/data python benchmarks/hostile_audio.py [--out results/hostile_audio.json]   # ~3 min cold
"""
import argparse, json, os, platform, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf, soxr
from ser_kit.data import load_corpus
from ser_kit.classical import EmotionRecognizer
from ser_kit.models import uar, versions

ALTERATIONS = {  # name -> (samples at 16 kHz -> samples, the rate written)
    'as recorded': (lambda y: y, 16000),
    'DC offset 0.002 (-54 dBFS)': (lambda y: y + 0.002, 16000),
    'DC offset 0.02 (-34 dBFS)': (lambda y: np.clip(y + 0.02, -1, 1), 16000),
    'gain x4': (lambda y: np.clip(4 * y, -1, 1), 16000),
    'gain x0.25': (lambda y: 0.25 * y, 16000),
    'telephone: 8 kHz': (lambda y: soxr.resample(y, 16000, 8000), 8000),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'hostile_audio.json'))
    a = ap.parse_args(); t0 = time.time()
    m = load_corpus(Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev')
    train, test = m[m.speaker.astype(int) <= 12], m[m.speaker.astype(int) > 12].reset_index(drop=True)
    rec = EmotionRecognizer(progress=False).fit(train); t_fit = time.time() - t0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (alter, sr) in ALTERATIONS.items():
            paths = []
            for i, p in enumerate(test.path):
                y, sr0 = sf.read(p, dtype='float32'); assert sr0 == 16000
                q = Path(tmp) / f"{i:04d}.wav"; sf.write(q, alter(y if y.ndim == 1 else y.mean(1)), sr, subtype='FLOAT')
                paths.append(str(q))
            t = rec.predict_table(paths, speakers=list(test.speaker))
            got = dict(zip(t.path, t.prediction)); pred = [got.get(p, '(skipped)') for p in paths]
            rows.append(dict(clips=name, uar=round(uar(test.emotion, pred), 4), skipped=len(t.attrs['skipped']),
                             agree_with_original=None))
            if name == 'as recorded': base = pred
            rows[-1]['agree_with_original'] = round(float(np.mean(np.array(pred) == np.array(base))), 3)
            print(rows[-1], flush=True)
    out = dict(date=time.strftime('%Y-%m-%d %H:%M'), data='RAVDESS: train actors 01-12, test actors 13-16 (240 clips)',
               model=repr(rec), adaptation=rec.adaptation(), train_seconds=round(t_fit, 1), rows=rows,
               machine=f"{platform.node()}: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
               seconds=round(time.time() - t0, 1), versions=versions())
    print(pd.DataFrame(rows).to_string(index=False))
    Path(a.out).write_text(json.dumps(out, indent=1, default=str)); print('written', a.out)


if __name__ == '__main__':
    main()
