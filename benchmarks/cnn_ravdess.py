"""Deep models vs the classical model on real RAVDESS, speaker-independent.

Protocol A: train actors 01-12, validate (early stopping) on 13-14, test on 15-16; protocol B, the reverse: train 05-16,
validate 03-04, test 01-02. The classical model has no use for validation speakers, so it trains on all 14 actors
(01-14 / 03-16). The fusion row fuses the first deep model with a classical model (`FusionRecognizer.fit_with_cnn`): its
weight (the CNN's share) is chosen on the validation actors by UAR, with a classical model trained without them, and
its probabilities calibrated by a temperature fitted on the same actors; then the classical model is trained on all 14
actors. The test actors are never used for either choice; the weight and the temperature are printed. Prints one
table per protocol (UAR, training minutes, seconds per epoch, warm single-clip predict ms)
and writes a JSON file with the settings, seeds, package versions and machine.

Usage: python benchmarks/cnn_ravdess.py [--archs resnet1d cnn2d crnn] [--epochs 60] [--models 3] [--tta 5]
       [--protocols A B] [--threads 1] [--out cnn_ravdess.json]        (needs $SER_KIT_DATA holding ravdess-dev/)
"""
import argparse, json, os, platform, sys, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from recorded import recorded_settings
warnings.filterwarnings('ignore')
import numpy as np, torch
from ser_kit.data import load_corpus
from ser_kit.classical import EmotionRecognizer
from ser_kit.models import bench_predict, versions
from ser_kit.cnn import CNNRecognizer
from ser_kit.fusion import FusionRecognizer


def predict_ms(rec, clip, n=20) -> float:
    "Median warm single-clip predict time (load, features, forward) in ms."
    return round(bench_predict(rec, clip, n=n, warmup=1)['ms_median'], 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--archs', nargs='*', default=['resnet1d', 'cnn2d', 'crnn'])
    ap.add_argument("--epochs", type=int, default=60); ap.add_argument('--models', type=int, default=3, help='networks per ensemble')
    ap.add_argument('--single-models', type=int, default=1, help='networks for the archs after the first')
    ap.add_argument('--tta', type=int, default=5); ap.add_argument('--protocols', nargs='*', default=['A', 'B'])
    ap.add_argument('--threads', type=int, default=1); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default='cnn_ravdess.json')
    a = ap.parse_args(); torch.set_num_threads(a.threads)
    df = load_corpus(Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev'); act = df.speaker.astype(int)
    protos = {'A': (act <= 14, ['13', '14'], act >= 15), 'B': (act >= 3, ['03', '04'], act <= 2)}
    rows = []
    for p in a.protocols:
        train, val, test = protos[p]; clip = df[test].path.iloc[0]
        t0 = time.time(); cls = EmotionRecognizer(n_jobs=1, seed=a.seed).fit(df[train]); minutes = (time.time() - t0) / 60
        rows.append(dict(protocol=p, model=f'classical ({cls.featureset} features, logreg, {cls.adaptation()})', uar=round(cls.score(df[test]), 3),
                         train_min=round(minutes, 2), s_per_epoch=None, predict_ms=predict_ms(cls, clip)))
        print(json.dumps(rows[-1]), flush=True); first = None
        for k, arch in enumerate(a.archs):
            n = a.models if k == 0 else a.single_models
            rec = CNNRecognizer(arch=arch, epochs=a.epochs, patience=a.epochs, n_models=n, tta=a.tta, val_speakers=val,
                                seed=a.seed, progress=False)
            t0 = time.time(); rec.fit(df[train]); minutes = (time.time() - t0) / 60
            hists = list(rec.network_histories().values())          # one per network of the ensemble
            rows.append(dict(protocol=p, model=f"{arch} x{n}, TTA {a.tta}", uar=round(rec.score(df[test]), 3),
                             train_min=round(minutes, 1), s_per_epoch=round(float(rec.history_.seconds.mean()), 1),
                             best_epochs=[int(h.epoch[h.val_uar.idxmax()]) for h in hists],
                             best_val_uar=[round(float(h.val_uar.max()), 3) for h in hists], predict_ms=predict_ms(rec, clip),
                             curves=[h.round(4).to_dict('list') for h in hists]))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != 'curves'}), flush=True)
            if n > 1 or a.tta > 1:                                   # the fast path: one network, the centre crop
                networks, tta = rec.networks, rec.tta; rec.networks, rec.tta = networks[:1], 1
                rows.append(dict(protocol=p, model=f"{arch} (its first network alone, centre crop)", uar=round(rec.score(df[test]), 3),
                                 train_min=round(minutes / n, 1), s_per_epoch=rows[-1]['s_per_epoch'], predict_ms=predict_ms(rec, clip)))
                print(json.dumps(rows[-1]), flush=True); rec.networks, rec.tta = networks, tta
            if first is None: first, first_min = rec, minutes
        if first is not None:                                        # weight and temperature from the validation actors
            t0 = time.time(); fused = FusionRecognizer(n_jobs=1, seed=a.seed).fit_with_cnn(first, df[train])
            v, tune_min = fused.validation_, (time.time() - t0) / 60
            print(f"fusion, protocol {p}: weight {fused.weight_} (the CNN's share), temperature {fused.temperature_}, "
                  f"chosen on actors {v['speakers']} (validation UAR {v['uar']:.3f})", flush=True)
            rows.append(dict(protocol=p, model=f"fusion: classical + {a.archs[0]} (tuned weight {fused.weight_:.2f}, "
                                               f"T {fused.temperature_:.2f})", uar=round(fused.score(df[test]), 3),
                             train_min=round(first_min + tune_min, 1), s_per_epoch=None, predict_ms=predict_ms(fused, clip),
                             weight=fused.weight_, temperature=fused.temperature_, val_speakers=v['speakers'],
                             val_uar=round(v['uar'], 3), val_curve=v['curve']))
            print(json.dumps({k: x for k, x in rows[-1].items() if k != "val_curve"}), flush=True)
    print('\n| protocol | model | UAR | train min | s/epoch | predict ms |\n|---|---|---|---|---|---|')
    for r in rows: print(f"| {r['protocol']} | {r['model']} | {r['uar']:.3f} | {r['train_min']} | {r['s_per_epoch'] or '-'} | {r['predict_ms']} |")
    Path(a.out).write_text(json.dumps(dict(rows=rows, settings=recorded_settings(a), versions=versions('torch'), machine=platform.platform(),
                                           cpus=os.cpu_count(), time=time.strftime('%Y-%m-%dT%H:%M:%S')), indent=1, default=str))


if __name__ == '__main__': main()
