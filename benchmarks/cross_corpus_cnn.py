"""Cross-corpus, both ways (RAVDESS <-> EMO-DB on their shared labels), for the CNN, the classical model and fusion.

Each model is trained on every clip of one corpus that carries a shared label and scored (UAR) on the other corpus's
clips with those labels: no speaker, recording set-up or language is shared between training and test. Unadapted and
speaker-adaptive versions of each model: the CNN with `adapt='em'` (its default: the classifier on speaker-normalised
network vectors), `'z'` and `None` (the same networks with the other classifier, or their own softmax), `'speaker'`, the
classical model with `adapt=None` and `'em'` (its default); fusion as shipped (the fusion's CNN member: the first
network set alone, `speaker_bn=None`, + default classical), all unadapted, with the speaker-adaptive input CNN
(`--cnn-adapt` chooses which CNNs train), and with the gated CNN. The CNN's default (`speaker_bn='gate'`) trains a
second, speaker batch-norm network set: `em` is that default; `em_first_set`, `z` and `none` read the first set alone,
`twin` the speaker batch-norm set alone, and `gate` says who crossed the gate. `GATE_BREADTH` (6 effective emotions)
is written for 8 emotions: with 6 shared labels nobody can cross it, and `fit` now trains no twin there. So the CNN
trains here with the threshold at `--gate-share` of the shared labels (0.75: 4.5 of 6), which keeps the twin;
`em_gate_share` scores it with that threshold (`gate_share` says who crossed), `em` with the library's, which is
what the library's own model (no twin) predicts. Test clips are grouped by
their speaker (unlabelled) for adaptation. Fusion weights and temperatures
come from the CNN's validation speakers (training corpus); each fusion is trained once a pool (`--pools`: the
library's default first, which names the row, then `..., pool=linear`); `--even-mix` scores the classical model, the
default CNN and each fusion also with each broad test speaker's answers evened. Writes results/cross_corpus_cnn.json.

    SER_KIT_DATA=../shared/data python benchmarks/cross_corpus_cnn.py [--models 3] [--epochs 30] [--threads 2]
        [--cnn-adapt em speaker] [--prosody] [--gate-share 0.75] [--pools log linear]
        [--directions emodb->ravdess ravdess->emodb] [--even-mix] [--out FILE]
"""
import argparse, json, os, platform, sys, time, warnings
from contextlib import contextmanager
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from recorded import recorded_settings
from cnn_adapt_cv import scored
from ser_kit.data import load_corpus
from ser_kit.models import versions
import ser_kit.cnn as cnn_module
from ser_kit.cnn import CNNRecognizer
from ser_kit.classical import EmotionRecognizer
from ser_kit.fusion import FusionRecognizer, POOL, POOLS
from ser_kit.adapt import even_mix
from ser_kit.models import uar

DIRECTIONS = ['emodb->ravdess', 'ravdess->emodb']
FUSIONS = {'shipped (CNN em + classical em)': ('em_first_set', 'em'), 'unadapted': ('none', 'none'),
           'CNN speaker + classical em': ('speaker', 'em'), 'gated CNN (speaker_bn gate) + classical em': ('em', 'em')}


@contextmanager
def gate_breadth(value: float):
    "Score with another gate threshold (the library's `GATE_BREADTH` is written for 8 emotions)."
    old = cnn_module.GATE_BREADTH; cnn_module.GATE_BREADTH = value
    try: yield
    finally: cnn_module.GATE_BREADTH = old


def evened(rec, te) -> dict:
    "UAR of `rec` on `te` grouped by speaker, as predicted and with each broad speaker's answers evened (`even_mix`)."
    P, ok, _ = rec.predict_proba_batch(list(te.path), list(te.speaker)); truth = dict(zip(te.path, te.emotion))
    y, spk = [truth[p] for p in ok], dict(zip(te.path, te.speaker))
    return dict(plain=round(uar(y, [rec.labels[i] for i in P.argmax(1)]), 4),
                evened=round(uar(y, [rec.labels[i] for i in even_mix(P, [spk[p] for p in ok]).argmax(1)]), 4))


def direction(train, test, a) -> dict:
    shared = sorted(set(train.emotion) & set(test.emotion))
    train, test = train[train.emotion.isin(shared)], test[test.emotion.isin(shared)]
    out = dict(shared_labels=shared, n_train=len(train), n_test=len(test), classical={}, cnn={}, fusion={}, minutes={})
    for ad in (None, 'em'):
        classical = EmotionRecognizer(adapt=ad, emotions=shared, n_jobs=2).fit(train)
        res = evened(classical, test) if a.even_mix and ad == 'em' else None   # one prediction, both scores
        out['classical'][str(ad)] = res['plain'] if res else scored(classical, test)
        if res: out['even_mix'] = {'classical em': res}
    cnns = {}
    for ad in a.cnn_adapt:
        t = time.time()
        with gate_breadth(a.gate_share * len(shared)):   # a threshold the shared labels reach: the twin trains
            cnns[ad] = CNNRecognizer(adapt=ad, emotions=shared, n_models=a.models, epochs=a.epochs, n_jobs=1,
                                     features=dict(prosody=a.prosody)).fit(train)
        out['minutes'][f'cnn {ad}'] = round((time.time() - t) / 60, 1)
        res = evened(cnns[ad], test) if a.even_mix and ad == 'em' else None
        out['cnn'][ad] = res['plain'] if res else scored(cnns[ad], test)
        if res: out['even_mix']['cnn em'] = res
        if ad == 'em' and cnns['em'].bn_model_ is not None:   # who crossed the gate, the twin alone, a relative gate
            out['gate'] = cnns['em'].gate_; out['cnn']['twin'] = scored(cnns['em'].bn_model_, test)
            with gate_breadth(a.gate_share * len(shared)):
                out['cnn']['em_gate_share'] = scored(cnns['em'], test); out['gate_share'] = cnns['em'].gate_
        if ad == 'em':    # the same networks with the other classifier on top ('z') or none (their own softmax)
            for other in ('z', 'none', 'em_first_set'):   # the first network set alone (speaker_bn=None), read 3 ways
                cnns[other] = cnns['em'].reading(None)
                cnns[other].adapt = None if other == 'none' else 'em' if other == 'em_first_set' else other
                if other == 'z': cnns[other]._fit_head()
                out['cnn'][other] = scored(cnns[other], test)
        print(json.dumps(out), flush=True)
    for name, (cad, kad) in FUSIONS.items():
        if cad not in cnns: continue
        for pool in a.pools:                # the first is the row's name alone; another pool is named in it
            fused = FusionRecognizer(classical=dict(adapt=kad), emotions=shared, pool=pool,
                                     n_jobs=2).fit_with_cnn(cnns[cad], train)
            res = evened(fused, test) if a.even_mix else None
            out['fusion'][name if pool == a.pools[0] else f'{name}, pool={pool}'] = dict(
                uar=res['plain'] if res else scored(fused, test), weight=fused.weight_,
                temperature=fused.temperature_, pool=pool)
            if res: out['even_mix'][f'fusion {name}, pool={pool}'] = res
    print(json.dumps(out), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=30); ap.add_argument('--models', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--prosody', action='store_true', help="the CNN's F0 and periodicity rows under the bands")
    ap.add_argument('--cnn-adapt', nargs='*', default=['em', 'speaker'], choices=['em', 'speaker'],
                    help="the CNNs to train ('em' also gives the 'z' and unadapted rows: the same networks)")
    ap.add_argument('--gate-share', type=float, default=0.75,
                    help="also score the gate with a threshold of this share of the shared labels (0.75: 6 of 8)")
    ap.add_argument('--pools', nargs='+', default=[POOL] + [p for p in POOLS if p != POOL], choices=POOLS,
                    help="each fusion is trained and scored once a pool (the first, the default, names the row)")
    ap.add_argument('--directions', nargs='+', default=DIRECTIONS, choices=DIRECTIONS, help='trained -> tested on')
    ap.add_argument('--even-mix', action='store_true',
                    help="also score the classical model, the default CNN and each fusion with each broad test "
                         "speaker's answers evened (`ser_kit.adapt.even_mix`)")
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'cross_corpus_cnn.json'))
    a = ap.parse_args(); torch.set_num_threads(a.threads)
    root = Path(os.environ.get('SER_KIT_DATA', '../shared/data')); t0 = time.time()
    rav = load_corpus(root / 'ravdess-dev').reset_index(drop=True)
    emo = load_corpus(root / 'emodb').reset_index(drop=True)
    res = dict(data=f"RAVDESS actors 01-16 ({len(rav)} clips), EMO-DB ({len(emo)} clips)", settings=recorded_settings(a),
               date=time.strftime('%Y-%m-%d'),
               directions={d: direction(*(dict(emodb=emo, ravdess=rav)[c] for c in d.split('->')), a)
                           for d in a.directions},
               seconds=round(time.time() - t0), versions=versions('torch'),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count(), threads=a.threads))
    Path(a.out).write_text(json.dumps(res, indent=1)); print(json.dumps(res, indent=1))


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
