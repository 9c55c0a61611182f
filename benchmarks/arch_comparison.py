"""The seeds' model comparison repeated honestly: every `CNNRecognizer` architecture on RAVDESS actors it never heard.

One of the seed projects reported, on a random split of RAVDESS clips (speakers shared between train and test): 1-D
ResNet 0.92, AlexNet-style CNN 0.88, attention 0.63, LSTM 0.53, GRU 0.41. Here each architecture trains one network
(default settings, `--epochs` epochs) on RAVDESS actors 01-16 minus a test block of four actors, two training actors
held out for early stopping, and is scored (UAR) on the test block. Prints and writes results/arch_comparison_ravdess.json:
UAR per fold and mean, training minutes, warm single-clip predict ms, parameters.

    SER_KIT_DATA=../shared/data python benchmarks/arch_comparison.py [--epochs 30] [--folds 0 2]
"""
import argparse, json, os, platform, sys, time, warnings
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, str(Path(__file__).parent))
from recorded import recorded_settings
from adaptation import four_actor_folds
from ser_kit.data import load_corpus
from ser_kit.models import versions, bench_predict
from ser_kit.cnn import CNNRecognizer, ARCHS, n_params

SEED_RANDOM_SPLIT = {'resnet1d': 0.92, 'cnn2d': 0.88, 'transformer': 0.63, 'lstm': 0.53, 'gru': 0.41}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=30); ap.add_argument('--folds', type=int, nargs='*', default=[0, 2])
    ap.add_argument('--archs', nargs='*', default=list(ARCHS)); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'arch_comparison_ravdess.json'))
    a = ap.parse_args(); torch.set_num_threads(a.threads)
    rav = load_corpus(Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev').reset_index(drop=True)
    folds = four_actor_folds(rav); rows = []
    for arch in a.archs:
        uars, minutes, ms = [], [], []
        for k in a.folds:
            tr, te = folds[k]; t = time.time()
            rec = CNNRecognizer(arch=arch, epochs=a.epochs, n_jobs=1).fit(rav.iloc[tr]); minutes.append((time.time() - t) / 60)
            uars.append(rec.score(rav.iloc[te]))
            ms.append(bench_predict(rec, rav.path.iloc[te[0]], n=10, warmup=1)['ms_median'])
        r = dict(arch=arch, uar=round(float(np.mean(uars)), 3), fold_uar=[round(u, 3) for u in uars],
                 train_min=round(float(np.mean(minutes)), 1), predict_ms=round(float(np.median(ms)), 1),
                 params=n_params(rec.networks[0]), seed_random_split=SEED_RANDOM_SPLIT.get(arch))
        rows.append(r); print(json.dumps(r), flush=True)
    print('\n| arch | UAR, unseen actors | train min | predict ms | parameters | seed, random split |\n|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['arch']} | {r['uar']:.3f} | {r['train_min']} | {r['predict_ms']} | {r['params']:,} | "
              f"{r['seed_random_split'] or '-'} |")
    res = dict(data=f"RAVDESS actors 01-16 ({len(rav)} clips)", protocol=f'test blocks {a.folds} of four actors '
               '(0: 01-04, 1: 05-08, 2: 09-12, 3: 13-16); 2 training actors validate', settings=recorded_settings(a),
               date=time.strftime('%Y-%m-%d'), rows=rows, versions=versions('torch'),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count(), threads=a.threads))
    Path(a.out).write_text(json.dumps(res, indent=1)); print('written', a.out)


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
