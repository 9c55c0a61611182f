"""Is the CNN above the classical model, or is it luck? The three default models on the same clips, tested in pairs.

Four folds of four unseen RAVDESS actors (actors 01-16), as in `cnn_speed_speakers.py`. For each fold it reads the CNN's
vectors that `cnn_speed_speakers.py --dump DIR` wrote (its first three networks are the default CNN) and refits the
default classifier on them (as `cnn_heads.py`, reproducing the run's `cnn` figure), trains the default classical model
on the fold's 12 training actors (as the fusion's member: `FusionRecognizer.new_member('classical')`) and fuses the two
with the weight and temperature the run recorded for that fold (chosen on its validation actors). Every model's test
clips are grouped by speaker (unlabelled). The per-fold UARs are checked against the run's JSON, then the 960 test
clips of the four folds are pooled and each pair of models is compared on the same clips:

- `paired_test` (lesson 05): swap the two models' predictions clip by clip at random; the p-value is how often a
  swap changes UAR by as much as the models differ.
- a speaker bootstrap: resample the 16 test actors with replacement (all clips of a drawn actor), the 95 % interval of
  the UAR difference. Clips of one actor are not independent, so this is the stricter of the two.
- the fold and the actor counts: in how many of 4 folds and 16 actors the first model is above the second.

    SER_KIT_DATA=../shared/data python benchmarks/paired_models.py DUMP RUN.json [--networks 3] [--out FILE]

DUMP may hold more networks than the run (a five-network dump, `--first 3`, holds the default's three): RUN is the run
that trained `--networks` networks with the same seeds, whose fusion weights they are.
"""
import argparse, json, os, platform, sys, time, warnings
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).parent))
from recorded import recorded_settings
from adaptation import four_actor_folds
from cnn_heads import head
from ser_kit.cnn import cached_frames
from ser_kit.data import load_corpus
from ser_kit.evaluation import uar, paired_test
from ser_kit.fusion import FusionRecognizer, calibrate
from ser_kit.models import versions, weighted_mean


def speaker_bootstrap(y, a, b, spk, n_boot=2000, seed=0):
    "95 % interval of UAR(a) - UAR(b), resampling whole speakers; and the share of replicates where a is not above b."
    rng = np.random.default_rng(seed); units = [np.flatnonzero(spk == s) for s in np.unique(spk)]; d = []
    for _ in range(n_boot):
        i = np.concatenate([units[k] for k in rng.integers(0, len(units), len(units))])
        d.append(uar(y[i], a[i]) - uar(y[i], b[i]))
    lo, hi = np.quantile(d, [0.025, 0.975])
    return dict(low=round(float(lo), 4), high=round(float(hi), 4),
                share_not_above=round(float(np.mean(np.array(d) <= 0)), 4))


def fold_predictions(d, run_fold, train, test, K):
    "Predicted labels of the fold's test clips (in the dump's order) by the CNN, the classical model and the fusion."
    Pn = head(d, list(range(K)))
    Xt, it = cached_frames(test.reset_index(drop=True), None, n_jobs=1)
    te = test.reset_index(drop=True).iloc[it]
    assert list(te.speaker.astype(str)) == list(d['spk_test']), 'the dump holds other test clips'
    clf = FusionRecognizer(n_jobs=2).new_member('classical').fit(train)
    Pc, ok, _ = clf.predict_proba_batch(list(te.path), list(te.speaker))
    assert list(ok) == list(te.path) and list(clf.labels) == [str(l) for l in d['labels']]
    w, T = run_fold['weight'], run_fold['temperature']
    Pf = calibrate(weighted_mean([Pc, Pn], [1 - w, w]), T)
    lab = np.asarray(d['labels'])
    return {m: lab[P.argmax(1)] for m, P in (('cnn', Pn), ('classical', Pc), ('fusion', Pf))}, lab[d['y_test']]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('dump', help='the folder cnn_speed_speakers.py --dump wrote')
    ap.add_argument('run', help="that run's JSON (each fold's fusion weight and temperature, its UARs to check)")
    ap.add_argument('--networks', type=int, default=3, help='the CNN is the first K networks of the dump')
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'paired_models.json'))
    a = ap.parse_args(); t0 = time.time()
    rav = load_corpus(Path(os.environ.get('SER_KIT_DATA', '../shared/data')) / 'ravdess-dev').reset_index(drop=True)
    run = json.loads(Path(a.run).read_text())
    if run['settings']['models'] != a.networks:
        sys.exit(f"paired_models.py: error: {a.run}: a run of {run['settings']['models']} networks; its fusion weights "
                 f"are not those of {a.networks} (give the run that trained {a.networks})")
    preds, truth, spk, fold_rows = {m: [] for m in ('cnn', 'classical', 'fusion')}, [], [], []
    for k, (tr, te) in enumerate(four_actor_folds(rav)):
        d = dict(np.load(Path(a.dump) / f'fold{k}.npz')); rf = run['folds'][k]
        p, y = fold_predictions(d, rf, rav.iloc[tr], rav.iloc[te], a.networks)
        row = dict(fold=k, test_speakers=sorted(set(d['spk_test'])))
        for m in preds:
            preds[m].append(p[m]); row[m] = round(float(uar(y, p[m])), 4)
            row[f'{m}_in_run'] = rf[m]
        fold_rows.append(row); truth.append(y); spk.append(d['spk_test']); print(json.dumps(row), flush=True)
    y, spk = np.concatenate(truth), np.concatenate(spk); preds = {m: np.concatenate(v) for m, v in preds.items()}
    pairs = {}
    for a_, b_ in (('cnn', 'classical'), ('fusion', 'cnn'), ('fusion', 'classical')):
        pt = paired_test(y, preds[a_], preds[b_], n_perm=5000)
        per_spk = [uar(y[spk == s], preds[a_][spk == s]) - uar(y[spk == s], preds[b_][spk == s])
                   for s in np.unique(spk)]
        pairs[f'{a_} - {b_}'] = dict(
            difference_pooled=round(pt['difference'], 4), p_value_clip_swaps=round(pt['p_value'], 4),
            speaker_bootstrap_95=speaker_bootstrap(y, preds[a_], preds[b_], spk),
            folds_above=int(sum(r[a_] > r[b_] for r in fold_rows)),
            folds_below=int(sum(r[a_] < r[b_] for r in fold_rows)),
            actors_above=int(sum(v > 0 for v in per_spk)), actors_below=int(sum(v < 0 for v in per_spk)))
        print(f'{a_} - {b_}: {json.dumps(pairs[f"{a_} - {b_}"])}', flush=True)
    res = dict(data=f'RAVDESS actors 01-16 ({len(rav)} clips); the CNN vectors cnn_speed_speakers.py --dump wrote, '
                    f'fusion weights from {Path(a.run).name}',
               protocol='folds of 4 actors (01-04, 05-08, ...); test clips grouped by speaker (unlabelled); '
                        'the test clips of the four folds pooled for the paired comparisons',
               settings=recorded_settings(a), date=time.strftime('%Y-%m-%d'),
               uar_pooled={m: round(float(uar(y, p)), 4) for m, p in preds.items()},
               uar_mean_of_folds={m: round(float(np.mean([r[m] for r in fold_rows])), 4) for m in preds},
               folds=fold_rows, pairs=pairs, seconds=round(time.time() - t0), versions=versions(),
               machine=dict(python=platform.python_version(), cpus=os.cpu_count()))
    Path(a.out).write_text(json.dumps(res, indent=1)); print(json.dumps(res, indent=1))


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    main()
