"""A gate per test speaker between the default CNN and the speaker batch-norm CNN (`cnn_speaker_bn.py`), offline.

Speaker batch norm lifts the CNN on speakers heard in every emotion (0.729 against 0.700 on the 4 dev folds) but falls
on speakers heard in few emotions (0.543 / 0.426 with 4 / 2 emotions a speaker, against 0.621 / 0.625) and on a clip
alone. This study asks whether a rule that reads only a test speaker's *unlabelled* clips can keep the best of both:
the default CNN's mean class probabilities over the speaker's clips (what the `em` E-step estimates) give the
speaker's estimated mix of emotions; its breadth is the effective number of emotions, exp(entropy). A speaker with at
least `--min-clips` clips and a breadth of at least `--breadth` goes to the speaker batch-norm networks, any other
speaker to the default ones. The rule and its two numbers were fixed before any result was read (6 of 8 emotions,
16 clips); the sweep over the breadth printed after it is for reading only, never for choosing. The `gate_both` rows
(broad speakers to the average of both network sets) were added after the `both` rows had been read: a lead for the
next study, not a tested rule.

Inputs, on the same folds of 4 actors (RAVDESS actors 01-16):
- `--dump DIR`: `cnn_speed_speakers.py --models 5 --dump DIR` (the default CNN's vectors; its first 3 networks are
  the 3-network default: this study refits their classifier and checks it reproduces the run's figures);
- `--record FILE`: `cnn_speaker_bn.py --models 3 --fusion --record FILE` (every scored prediction's probabilities);
- `--default-json`: the default run's result, for each fold's fusion weight (the fusion is rebuilt from the classical
  member's recorded probabilities and checked against that run's figures).

    python benchmarks/cnn_gate.py --dump DIR --record FILE [--out benchmarks/results/cnn_gate.json]
"""
import argparse, glob, json, pickle, sys, time
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, str(Path(__file__).parent))
from ser_kit.cnn import CNNRecognizer
from ser_kit.models import uar, weighted_mean, skew_rows, versions
from recorded import recorded_settings
from paired_models import speaker_bootstrap
from ser_kit.evaluation import paired_test

CONDITIONS = {'full': 8, 'skew4': 4, 'skew2': 2}   # emotions each test speaker keeps


def default_proba(d, rows, K, by_speaker=True):
    "The default CNN's probabilities on `rows` of the fold's test clips: the first K networks, the `em` classifier."
    n = int(d['n_networks']); D = d['E'].shape[1] // n
    r = CNNRecognizer(adapt='em'); r.labels = list(d['labels'])
    r.head_data_ = dict(E=d['E'][:, :K * D], y=d['y'], spk=d['spk'], voice=d['voice']); r._fit_head()
    return r._head_proba(d['E_test'][rows][:, :K * D], d['spk_test'][rows] if by_speaker else None)


def recorded(rec, speakers, kind, by_speaker, n_emo):
    "The first recorded prediction of a model type on a fold's test, grouped or not (the CNN: its `em` classifier)."
    hits = [v for k, v in rec.items() if k[0] == speakers and k[1] == kind and k[3] == by_speaker and k[4] == n_emo
            and (kind != 'CNNRecognizer' or k[2] == 'em')]
    if not hits: raise KeyError(f"no recorded {kind} prediction for {speakers}, grouped={by_speaker}, {n_emo} emotions")
    return hits[0]


def breadth(P):
    "The effective number of emotions in a speaker's mean class probabilities: exp(entropy)."
    p = np.clip(P.mean(0), 1e-12, 1); return float(np.exp(-(p * np.log(p)).sum()))


def gated(spk, P_default, P_bn, rule):
    "Each speaker's rows from the speaker batch-norm table where `rule(n_clips, breadth)` holds, else the default's."
    out, chose = P_default.copy(), {}
    for s in np.unique(spk):
        i = spk == s; chose[s] = bool(rule(int(i.sum()), breadth(P_default[i])))
        if chose[s]: out[i] = P_bn[i]
    return out, chose


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dump', required=True); ap.add_argument('--record', required=True)
    ap.add_argument('--default-json', default=str(Path(__file__).parent / 'results' /
                                                  'cnn_speed_speakers_30ep_x3_em_layers_cw_ll.json'))
    ap.add_argument('--networks', type=int, default=3, help='the first K networks of the dump (the default: 3)')
    ap.add_argument('--breadth', type=float, default=6.0, help='least effective number of emotions for speaker BN')
    ap.add_argument('--min-clips', type=int, default=16, help='least clips of a speaker for speaker BN')
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'cnn_gate.json'))
    a = ap.parse_args(); t0 = time.time()
    rec = pickle.loads(Path(a.record).read_bytes())
    dflt = json.loads(Path(a.default_json).read_text())
    rule = lambda n, b: n >= a.min_clips and b >= a.breadth
    rows, sweep, pooled = [], {}, {}
    for k, f in enumerate(sorted(glob.glob(str(Path(a.dump) / 'fold*.npz')))):
        d = dict(np.load(f)); labels = list(d['labels']); spk = d['spk_test'].astype(str)
        emo = np.array(labels)[d['y_test']]; fold_spk = tuple(sorted(set(spk)))
        everyone = [f'{i:02d}' for i in range(1, 17)]   # the rotation of `skew_rows`: every actor of the run
        test = pd.DataFrame(dict(speaker=spk, emotion=emo)); w = dflt['folds'][k]['weight']
        assert dflt['folds'][k]['test_speakers'] == list(fold_spk), (f, fold_spk)
        if not any(key[0] == fold_spk for key in rec):
            print(f"fold {k}: not recorded (yet), left out", file=sys.stderr); continue
        r = dict(fold=k, test_speakers=list(fold_spk))
        for cond, n_emo in CONDITIONS.items():
            m = np.ones(len(test), bool) if n_emo == 8 else skew_rows(test, labels, n_emo, everyone)
            bn, cl, fu = (recorded(rec, fold_spk, kind, True, n_emo)
                          for kind in ('CNNRecognizer', 'EmotionRecognizer', 'FusionRecognizer'))
            for x in (bn, cl, fu):   # the recorded clips are the dump's, in the same order
                assert (x['speaker'] == spk[m]).all() and (x['emotion'] == emo[m]).all() and x['labels'] == labels
            Pd = default_proba(d, m, a.networks)
            Pf = weighted_mean([cl['P'], Pd], [1 - w, w])            # the default fusion, rebuilt
            score = lambda P: round(uar(emo[m], np.array(labels)[P.argmax(1)]), 4)
            Pg, chose = gated(spk[m], Pd, bn['P'], rule)
            Pfg = Pf.copy()                                       # the fusion gated by the same choice
            for s, c in chose.items():
                if c: Pfg[spk[m] == s] = fu['P'][spk[m] == s]
            Pb = (Pd + bn['P']) / 2                                  # both network sets, averaged, for every speaker
            Pfb = weighted_mean([cl['P'], Pb], [1 - w, w])
            r |= {f'cnn_both_{cond}': score(Pb), f'fusion_both_{cond}': score(Pfb)}
            Pgb, Pfgb = Pd.copy(), Pf.copy()         # read after 'both': the gate sending broad speakers to both sets
            for s_, c in gated(spk[m], Pd, bn['P'], rule)[1].items():
                if c: Pgb[spk[m] == s_], Pfgb[spk[m] == s_] = Pb[spk[m] == s_], Pfb[spk[m] == s_]
            r |= {f'cnn_gate_both_{cond}': score(Pgb), f'fusion_gate_both_{cond}': score(Pfgb)}
            r |= {f'cnn_default_{cond}': score(Pd), f'cnn_spkbn_{cond}': score(bn['P']), f'cnn_gate_{cond}': score(Pg),
                  f'fusion_default_{cond}': score(Pf), f'fusion_spkbn_{cond}': score(fu['P']),
                  f'fusion_gate_{cond}': score(Pfg), f'classical_{cond}': score(cl['P']),
                  f'to_spkbn_{cond}': sorted(s for s, c in chose.items() if c),
                  f'breadth_{cond}': {s: round(breadth(Pd[spk[m] == s]), 2) for s in chose}}
            if cond == 'full':   # every clip's prediction, pooled over the folds for the paired comparisons
                for name, P in (('cnn_gate', Pg), ('cnn_default', Pd), ('classical', cl['P']), ('fusion_gate', Pfg),
                                ('fusion_default', Pf)):
                    pooled.setdefault(name, []).append(np.array(labels)[P.argmax(1)])
                pooled.setdefault('truth', []).append(emo); pooled.setdefault('speaker', []).append(spk)
            for b in np.arange(1.0, 8.01, 0.5):   # for reading only: the rule's breadth swept
                Pg, _ = gated(spk[m], Pd, bn['P'], lambda n, x: n >= a.min_clips and x >= b)
                sweep.setdefault(f'{b:.1f}', {}).setdefault(cond, []).append(score(Pg))
        alone = np.ones(len(test), bool)   # a clip alone: the rule never sends it to speaker BN (1 clip < min_clips)
        r['cnn_default_alone'] = round(uar(emo, np.array(labels)[default_proba(d, alone, a.networks, False)
                                                                  .argmax(1)]), 4)
        bn1 = recorded(rec, fold_spk, 'CNNRecognizer', False, 8)
        r['cnn_spkbn_alone'] = round(uar(bn1['emotion'], np.array(labels)[bn1['P'].argmax(1)]), 4)
        r['cnn_gate_alone'] = r['cnn_default_alone']
        r['check'] = dict(default_run_cnn=dflt['folds'][k]['cnn'], default_run_fusion=dflt['folds'][k]['fusion'],
                          default_run_skew4=dflt['folds'][k]['cnn_em_skew4'],
                          default_run_skew2=dflt['folds'][k]['cnn_em_skew2'])
        rows.append(r); print(json.dumps(r), flush=True)
    y, spk = np.concatenate(pooled['truth']), np.concatenate(pooled['speaker']); pairs = {}
    for a_, b_ in (('cnn_gate', 'classical'), ('cnn_gate', 'cnn_default'), ('fusion_gate', 'fusion_default')):
        pa, pb = np.concatenate(pooled[a_]), np.concatenate(pooled[b_]); pt = paired_test(y, pa, pb, n_perm=5000)
        pairs[f'{a_} - {b_}'] = dict(difference_pooled=round(pt['difference'], 4), p_value_clip_swaps=round(
            pt['p_value'], 4), speaker_bootstrap_95=speaker_bootstrap(y, pa, pb, spk))
        print(f'{a_} - {b_}: {json.dumps(pairs[f"{a_} - {b_}"])}', flush=True)
    mean = lambda key: round(float(np.mean([r[key] for r in rows])), 4)
    res = dict(data='RAVDESS actors 01-16 (960 clips)', protocol='folds of 4 actors (as cnn_speed_speakers.py)',
               settings=recorded_settings(a), date=time.strftime('%Y-%m-%d'),
               uar={k: mean(k) for k in rows[0] if k.startswith(('cnn_', 'fusion_', 'classical_'))},
               sweep_for_reading_only={b: {c: round(float(np.mean(v)), 4) for c, v in s.items()}
                                       for b, s in sweep.items()},
               paired_every_emotion=pairs, folds=rows, seconds=round(time.time() - t0), versions=versions())
    Path(a.out).write_text(json.dumps(res, indent=1)); print(json.dumps(res['uar'], indent=1))
    print(json.dumps(res['sweep_for_reading_only']))


if __name__ == '__main__':
    main()
