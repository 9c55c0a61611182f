"""The even-mix step (`ser_kit.adapt.even_mix`) after the fusion, on stored member probabilities: nothing is trained.

Reads the `.npz` files `cnn_speed_speakers.py --both --fusion --dump-probs DIR` writes (`results/fusion_probs/four` and
`.../emobox`), fuses the members as `FusionRecognizer` does by default (log pool, its weight chosen on the validation
actors by log-likelihood), and scores each fold's test actors with every emotion and with 4 and 2 emotions a speaker:
the fusion, the fusion evened per speaker, and each member alone, evened or not. Also who crossed the gate.

    SER_KIT_DATA=../shared/data python benchmarks/even_mix_study.py results/fusion_probs/four [--protocol four|emobox]
"""
import argparse, glob, json, os, platform, sys, time
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, str(Path(__file__).parent))
from fusion_study import load_probs
from ser_kit.data import load_corpus
from ser_kit.models import uar, versions
from ser_kit.fusion import weight_curve, choose_weight, pool_probs, POOL
from ser_kit.adapt import even_mix, even_speakers, EVEN_CLIPS, EVEN_SHARE, EVEN_ROUNDS


def rounded(r: dict) -> dict:
    "A row with its floats to 4 decimals."
    return {m: round(x, 4) if isinstance(x, float) else x for m, x in r.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('dir'); ap.add_argument('--protocol', default='four', choices=['four', 'emobox'])
    ap.add_argument('--out', default=None, help='default: results/even_mix_study_<protocol>.json')
    a = ap.parse_args(); t0 = time.time()
    rav = load_corpus(Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev').reset_index(drop=True)
    rows, crossed = [], {}
    for f in sorted(glob.glob(f'{a.dir}/fold*.npz')):
        k = int(Path(f).stem[4:]); d = load_probs(f, rav); L = d['labels']
        y_of = lambda s: np.array([L.index(e) for e in d[s]['y']])
        v = d['val8']; w = choose_weight(weight_curve(v['Pc'], v['Pn'], y_of('val8'), pool=POOL))
        r = dict(fold=k, weight=w)
        for n in (8, 4, 2):
            t = d[f'test{n}']; y, spk = y_of(f'test{n}'), t['spk']; sfx = '' if n == 8 else f'_skew{n}'
            P = pool_probs([t['Pc'], t['Pn']], [1 - w, w], POOL)
            for name, Q in (('fusion', P), ('classical', t['Pc']), ('cnn', t['Pn'])):
                r[f'{name}{sfx}'], r[f'{name}_even{sfx}'] = uar(y, Q.argmax(1)), uar(y, even_mix(Q, spk).argmax(1))
            gate = even_speakers(P, spk); r[f'evened{sfx}'] = sum(g['even'] for g in gate.values())
            crossed[f'fold{k}{sfx}'] = {s: [g['clips'], g['breadth'], g['even']] for s, g in gate.items()}
        rows.append(r); print(json.dumps(rounded(r)), flush=True)
    df = pd.DataFrame(rows).set_index('fold')
    res = dict(source=str(a.dir), protocol=a.protocol, date=time.strftime('%Y-%m-%d'), pool=POOL,
               settings=dict(EVEN_CLIPS=EVEN_CLIPS, EVEN_SHARE=EVEN_SHARE, EVEN_ROUNDS=EVEN_ROUNDS),
               mean=df.mean().round(4).to_dict(), folds=[rounded(r) for r in rows],
               gate=crossed, seconds=round(time.time() - t0), versions=versions(),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count()))
    out = a.out or str(Path(__file__).parent / 'results' / f'even_mix_study_{a.protocol}.json')
    Path(out).write_text(json.dumps(res, indent=1)); print(df.mean().round(4).to_string())


if __name__ == '__main__':
    main()
