"""The CNN trained on speed-perturbed copies of its training actors, each copy a speaker of its own, on unseen actors.

The route the team's notes name as the untried one for the deep model: `CNNRecognizer(speeds=...)` plays every training
clip a few times faster and slower (Kaldi-style speed perturbation: tempo and pitch move together), treats each (actor,
factor) pair as a new speaker (its own band means for the speaker-adaptive input), and trains on all of them.
RAVDESS actors 01-16 in folds of four (01-04, 05-08, ...). In each fold the validation actors (the two
`choose_val_speakers` picks, as for the plain CNN) get no copies, so early stopping never sees a copy of a training
voice; the test actors are used for nothing but the score, their clips grouped by speaker (unlabelled) for adaptation.
With `--adapt em` (the default) or `z` the same networks are also scored with the other classifier on top and with none
(`adapt=None`: their own softmax; for em also em without the E-step's hedge, `balance` 0, and the classifier
without class weights), each with the test speakers' clips grouped, each clip alone, and with every test speaker
keeping only 4 or 2 emotions (`skew_rows`, as `ser-kit evaluate --skew`); with `--fusion` the classical model and the
fusion are scored on the same skewed tests, and the fusion also with its weight chosen by the rule before (the best
validation UAR instead of log-likelihood). `--first K` also scores the first K networks of the ensemble alone (their
slice of the vectors, the classifier refitted; the fusion too): with the same seeds they are the networks a K-network
run trains, so one run compares ensemble sizes on the same networks. `--dump DIR` writes each fold's vectors for
`cnn_heads.py`, which varies the classifier on top alone. With the default `speaker_bn='gate'` each fold also records
who crossed the gate (`gate`), the first set of networks alone (`first_set`, the model with `speaker_bn=None` and the
same seeds) and the speaker batch-norm twin alone (`twin`), on the same test clips; with `--fusion`, `fusion` fuses the
gated CNN and `fusion_first_set` the first set alone (the fusion as shipped: its CNN member has no twin). `--both`
also reads every speaker who crosses the gate by the mean of both sets' probabilities (the library's
`speaker_bn='both'` on the same networks: `cnn_both`, and `fusion_both` with the weight tuned on that reading).
`--dump-probs DIR` (with `--both --fusion`) saves that fusion's member probabilities, each fold's test actors and,
as `fit_with_cnn` tunes, its validation actors, with 8, 4 or 2 emotions a speaker, for `fusion_study.py`.
Writes results/cnn_speed_speakers.json (the runs kept are named by their settings: results/cnn_speed_speakers_*).

    SER_KIT_DATA=../shared/data python benchmarks/cnn_speed_speakers.py [--speeds 0.9 1.1] [--epochs 30] [--models 1]
        [--tta 1] [--adapt em|z|speaker|none] [--kind logmel|mfcc] [--n-mels 64] [--prosody] [--fusion]
        [--protocol four|emobox]
        [--threads 2]
        [--swa K ...] [--first K ...] [--dump DIR] [--both] [--dump-probs DIR] [--out FILE]
"""
import argparse, copy, json, os, platform, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch
sys.path.insert(0, str(Path(__file__).parent))
from recorded import recorded_settings
from adaptation import four_actor_folds
from cnn_adapt_cv import scored
from ser_kit.data import load_corpus, emobox_folds
from ser_kit.models import versions, skew_rows, ordered_labels
import ser_kit.cnn as cnn_module
from ser_kit.cnn import CNNRecognizer, FrameDataset, crop_frames, average_weights, refresh_batchnorm, cached_frames
from ser_kit.fusion import FusionRecognizer


class Snapshots:
    "Wraps `train_one_epoch`: keeps each network's weights after each of its last `keep` epochs (reads, never changes)."
    def __init__(self, keep: int):
        self.keep, self.runs, self.orig = keep, [], cnn_module.train_one_epoch

    def __call__(self, model, loader, opt, sched, scaler, s, ep, *args, **kw):
        loss = self.orig(model, loader, opt, sched, scaler, s, ep, *args, **kw)
        if ep == 0: self.runs.append([])
        if ep >= s.epochs - self.keep:
            self.runs[-1].append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        return loss


def averaged(net, states, X, crop):
    "A copy of `net` with the mean of `states`' weights, its batch-norm statistics recomputed on centre crops of `X`."
    avg = copy.deepcopy(net).cpu(); avg.load_state_dict(average_weights(states))
    return refresh_batchnorm(avg, FrameDataset(X, None, crop))


def member_probs(fb, ts) -> dict:
    "Each member's probabilities of the clips of `ts`, grouped by speaker as `scored` groups them, and their truth."
    (Pc, ok, _), (Pn, ok2, _) = [m.predict_proba_batch(list(ts.path), list(ts.speaker)) for m in fb.members]
    assert ok == ok2; truth = dict(zip(ts.path, zip(ts.emotion, ts.speaker.astype(str))))
    return dict(Pc=Pc, Pn=Pn, y=[truth[p][0] for p in ok], spk=[truth[p][1] for p in ok], paths=ok)


def save_probs(path, d: dict):
    "Write a dump as `.npz` (arrays only: `np.load` needs no pickle); clips by file name, never by this machine's path."
    flat = dict(labels=np.array(d['labels']), weight=d['weight'], temperature=d['temperature'],
                val_speakers=np.array(d['val_speakers']))
    for s, t in d.items():
        if s.startswith(('test', 'val')) and isinstance(t, dict):
            flat |= {f'{s}_Pc': np.asarray(t['Pc'], np.float32), f'{s}_Pn': np.asarray(t['Pn'], np.float32),
                     f'{s}_y': np.array(t['y']), f'{s}_spk': np.array(t['spk']),
                     f'{s}_files': np.array([Path(q).name for q in t['paths']])}
    Path(path).parent.mkdir(parents=True, exist_ok=True); np.savez_compressed(path, **flat)


def dump_probs(path, fb, train, test, labels, everyone):
    "Save the fusion's member probabilities on the test actors and, as `fit_with_cnn` tunes, its validation actors."
    out = dict(labels=fb.labels, weight=fb.weight_, temperature=fb.temperature_, val_speakers=fb.members[1].val_speakers_)
    skewed = lambda m, n, who: m if n == 8 else m[skew_rows(m, labels, n, who)]
    out |= {f'test{n}': member_probs(fb, skewed(test, n, everyone)) for n in (8, 4, 2)}
    df = fb.prepare_manifest(train); is_val = np.isin(df.speaker.astype(str), out['val_speakers'])
    v = copy.copy(fb); v.members = [fb.new_member('classical').fit(df[~is_val]), fb.members[1]]   # neither heard them
    val = df[is_val]; who = sorted(set(val.speaker.astype(str)))
    with v.members[1].head_without(out['val_speakers']):
        out |= {f'val{n}': member_probs(v, skewed(val, n, who)) for n in (8, 4, 2)}
    save_probs(path, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--speeds', type=float, nargs='*', default=[0.9, 1.1])
    ap.add_argument('--epochs', type=int, default=30); ap.add_argument('--adapt', default='em')
    ap.add_argument('--models', type=int, default=1); ap.add_argument('--tta', type=int, default=1)
    ap.add_argument('--patience', type=int, default=None)
    ap.add_argument('--fusion', action='store_true', help='also the fusion with the default classical model')
    ap.add_argument('--kind', default='logmel', choices=['logmel', 'mfcc'], help='the input: log-mel bands or MFCCs')
    ap.add_argument('--n-mels', type=int, default=64, help='log-mel bands of the input (the default: 64)')
    ap.add_argument('--prosody', action='store_true', help='F0 and periodicity rows under the bands')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--swa', type=int, nargs='*', default=[],
                    help='also score each network averaged over its last K epochs')
    ap.add_argument('--folds', type=int, nargs='*', default=None, help='which folds (default: all)')
    ap.add_argument('--first', type=int, nargs='*', default=[],
                    help='also score the first K networks of the ensemble alone (classifier refitted on their vectors)')
    ap.add_argument('--dump', default=None,
                    help='a folder: each fold\'s training and test vectors (npz), for studies of the classifier alone')
    ap.add_argument('--both', action='store_true', help="speakers past the gate: the mean of both network sets")
    ap.add_argument('--dump-probs', default=None,
                    help="with --both --fusion: each fold's member probabilities (test and validation, 8 / 4 / 2 "
                         "emotions a speaker) for studies of the fusion that need no training (foldK.npz)")
    ap.add_argument('--protocol', default='four', choices=['four', 'emobox'],
                    help="four: actors 01-04, 05-08, ...; emobox: the EmoBox folds that have test actors here")
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'cnn_speed_speakers.json'))
    a = ap.parse_args(); torch.set_num_threads(a.threads)
    rav = load_corpus(Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev').reset_index(drop=True)
    rows, t0 = [], time.time()
    everyone, labels = sorted(rav.speaker.astype(str).unique()), ordered_labels(rav.emotion)   # for the skewed tests
    if True:
        folds = four_actor_folds(rav) if a.protocol == 'four' else emobox_folds(rav)
        for k, (tr, te) in enumerate(folds):
            if a.folds is not None and k not in a.folds: continue
            train, test = rav.iloc[tr], rav.iloc[te]; t = time.time()
            if a.swa: snaps = cnn_module.train_one_epoch = Snapshots(max(a.swa))
            cnn = CNNRecognizer(epochs=a.epochs, adapt=a.adapt, speeds=a.speeds, n_models=a.models, tta=a.tta,
                                patience=a.patience, n_jobs=1,
                                features=dict(kind=a.kind, n_mels=a.n_mels, prosody=a.prosody)).fit(train)
            minutes = round((time.time() - t) / 60, 1)                     # training only, not the scoring below
            r = dict(fold=k, test_speakers=sorted(set(test.speaker)), val_speakers=cnn.val_speakers_,
                     cnn=scored(cnn, test), minutes=minutes, cnn_alone=scored(cnn, test, by_speaker=False),
                     best_epochs=[int(h.epoch[h.val_uar.idxmax()]) for h in cnn.network_histories().values()])
            if cnn.bn_model_ is not None:   # speaker_bn='gate': who crossed it, the first set alone, the twin alone
                scored(cnn, test); r['gate'] = cnn.gate_
                v = cnn.reading(None)
                r['first_set'], r['twin'] = scored(v, test), scored(cnn.bn_model_, test)
                for n_emo in (4, 2):
                    r[f'first_set_skew{n_emo}'] = scored(v, test[skew_rows(test, labels, n_emo, everyone)])
            if cnn.adapt in ('z', 'em'):   # the same networks: their own softmax (none), or the other classifier on top
                for ad in (None, 'z', 'em'):
                    v = copy.copy(cnn); v.adapt = ad
                    if ad and ad != cnn.adapt: v._fit_head()
                    r[f'cnn_{ad}'], r[f'cnn_{ad}_alone'] = ((r['cnn'], r['cnn_alone']) if ad == cnn.adapt else
                                                            (scored(v, test), scored(v, test, by_speaker=False)))
                    for n_emo in (4, 2):
                        r[f'cnn_{ad}_skew{n_emo}'] = scored(v, test[skew_rows(test, labels, n_emo, everyone)])
            if cnn.adapt == 'em':   # the same classifier without the E-step's hedge (it acts at prediction only)
                v = copy.copy(cnn); v.norm_ = copy.copy(cnn.norm_); v.norm_.balance = 0.0
                r['cnn_em_b0'] = scored(v, test)
                for n_emo in (4, 2):
                    r[f'cnn_em_b0_skew{n_emo}'] = scored(v, test[skew_rows(test, labels, n_emo, everyone)])
            if cnn.adapt in ('z', 'em'):   # the same classifier fitted without class weights (every clip counts once)
                v = copy.copy(cnn); v._fit_head(class_weight=None); r['cnn_unweighted'] = scored(v, test)
                for n_emo in (4, 2):
                    r[f'cnn_unweighted_skew{n_emo}'] = scored(v, test[skew_rows(test, labels, n_emo, everyone)])
            if a.fusion:   # weight and temperature chosen on the CNN's validation actors, classical retrained on all 12
                t = time.time(); fused = FusionRecognizer(n_jobs=2).fit_with_cnn(cnn, train)
                for n_emo in (4, 2):
                    ts = test[skew_rows(test, labels, n_emo, everyone)]
                    r |= {f'classical_skew{n_emo}': scored(fused.members[0], ts),
                          f'fusion_skew{n_emo}': scored(fused, ts)}
                c = pd.DataFrame(fused.validation_['curve'])     # the rule before: the best validation UAR
                by_uar = copy.copy(fused); by_uar.weight_ = float(c.sort_values(['uar', 'log_lik'], ascending=False,
                                                                              kind='stable').weight.iloc[0])
                r |= dict(fusion_by_uar=scored(by_uar, test), weight_by_uar=by_uar.weight_)
                r |= dict(classical=scored(fused.members[0], test), fusion=scored(fused, test), weight=fused.weight_,
                          temperature=fused.temperature_, fusion_extra_minutes=round((time.time() - t) / 60, 1))
                if cnn.bn_model_ is not None:   # the fusion as shipped: its CNN member is the first set alone
                    v = cnn.reading(None)
                    f1 = FusionRecognizer(n_jobs=2).fit_with_cnn(v, train)
                    r |= dict(fusion_first_set=scored(f1, test), weight_first_set=f1.weight_)
                    for n_emo in (4, 2):
                        r[f'fusion_first_set_skew{n_emo}'] = scored(f1, test[skew_rows(test, labels, n_emo, everyone)])
            if a.both and cnn.bn_model_ is not None:   # broad speakers: the mean of both sets (tuned and scored so)
                v = cnn.reading('both'); r['cnn_both'] = scored(v, test)
                for n_emo in (4, 2):
                    r[f'cnn_both_skew{n_emo}'] = scored(v, test[skew_rows(test, labels, n_emo, everyone)])
                if a.fusion:
                    fb = FusionRecognizer(n_jobs=2).fit_with_cnn(v, train)
                    r |= dict(fusion_both=scored(fb, test), weight_both=fb.weight_)
                    for n_emo in (4, 2):
                        r[f'fusion_both_skew{n_emo}'] = scored(fb, test[skew_rows(test, labels, n_emo, everyone)])
                    if a.dump_probs: dump_probs(Path(a.dump_probs) / f'fold{k}.npz', fb, train, test, labels, everyone)
            for K in a.first:   # a smaller ensemble: the same first K networks, their slice of the vectors
                v = copy.copy(cnn); v.networks = cnn.networks[:K]; d = cnn.head_data_
                if v.adapt in ('z', 'em'):
                    v.head_data_ = dict(d, E=d['E'][:, :d['E'].shape[1] // len(cnn.networks) * K]); v._fit_head()
                r[f'cnn_first{K}'] = scored(v, test)
                if a.fusion: r[f'fusion_first{K}'] = scored(FusionRecognizer(n_jobs=2).fit_with_cnn(v, train), test)
            if a.dump and cnn.head_data_ is not None:   # the vectors the classifier reads, to study the classifier
                Xt, it = cached_frames(test.reset_index(drop=True), cnn.features, n_jobs=1)
                plain = {n: (x.astype(str) if x.dtype == object else x) for n, x in cnn.head_data_.items()}
                Path(a.dump).mkdir(parents=True, exist_ok=True)
                np.savez(Path(a.dump) / f'fold{k}.npz', **plain, E_test=cnn._embeddings(Xt),
                         y_test=cnn.label_index(test.emotion.iloc[it]),
                         spk_test=np.asarray(test.speaker.iloc[it], dtype=str),
                         labels=np.array(cnn.labels), n_networks=len(cnn.networks))
            if a.swa:   # the same networks, each replaced by the average of its last K epochs; the classifier refitted
                cnn_module.train_one_epoch = snaps.orig
                X, y, spk, voice, va = cnn._training_arrays(train); crop = cnn._crop()
                for K in a.swa:
                    v = copy.copy(cnn); v.networks = [averaged(n, st[-K:], X[~va], crop) for n, st in zip(cnn.networks,
                                                                                                        snaps.runs)]
                    if v.adapt in ('z', 'em'):
                        v.head_data_ = dict(E=v._embeddings(X), y=y, spk=spk, voice=voice); v._fit_head()
                    vx = (crop_frames(X[va], crop) if crop else X[va])
                    r[f'cnn_swa{K}'], r[f'cnn_swa{K}_val_uar'] = scored(v, test), [
                        cnn_module.validation_scores(n, (vx, y[va]), 'cpu')['val_uar'] for n in v.networks]
                    if a.fusion: r[f'fusion_swa{K}'] = scored(FusionRecognizer(n_jobs=2).fit_with_cnn(v, train), test)
                r['best_val_uar'] = [float(h.val_uar.max()) for h in cnn.network_histories().values()]
            rows.append(r); print(json.dumps(r), flush=True)
    res = dict(data=f"RAVDESS actors 01-16 ({len(rav)} clips)",
               protocol=('folds of 4 actors' if a.protocol == 'four' else 'the EmoBox RAVDESS folds with test actors '
                         'among those present') + '; 2 training actors (no copies of them) validate',
               settings=recorded_settings(a), date=time.strftime('%Y-%m-%d'),
               uar={m: round(float(np.mean([r[m] for r in rows])), 4)
                    for m in rows[0] if m.startswith(('cnn', 'classical', 'fusion', 'first_set', 'twin'))
                    and m != 'fusion_extra_minutes'
                    and not m.endswith('val_uar')},
               folds=rows, seconds=round(time.time() - t0), versions=versions('torch'),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count(), threads=a.threads))
    Path(a.out).write_text(json.dumps(res, indent=1)); print(json.dumps(res, indent=1))


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
