"`fuse_results` with cross-fitted weights, and `ser-kit demo`'s job (`run_demo`) end to end on a small demo corpus."
import json
import numpy as np, pandas as pd
import pytest

from ser_kit.evaluation import fuse_results, run_demo
from ser_kit.fusion import pool_probs
from ser_kit.data import SettingError

LABELS = ['neutral', 'angry', 'sad']


def _result(P, y, folds, name):
    "A cross-validation-like result of these probabilities (clip i: speaker = its fold)."
    rows = [dict(path=f'c{i}.wav', speaker=f's{f}', emotion=LABELS[t], prediction=LABELS[int(np.argmax(p))], fold=f,
                 **{f'p_{l}': float(v) for l, v in zip(LABELS, p)}) for i, (p, t, f) in enumerate(zip(P, y, folds))]
    return dict(protocol='speaker', folds=len(set(folds)), labels=LABELS, seconds=1.0, predictions=rows,
                model=dict(model_type=name))


@pytest.fixture
def pair():
    rng = np.random.default_rng(1)
    y, folds = rng.integers(0, 3, 120), np.repeat([0, 1, 2, 3], 30)
    good = np.eye(3)[y] * 0.6 + rng.dirichlet(np.ones(3), 120) * 0.4    # mostly right
    guess = rng.dirichlet(np.ones(3), 120)
    return y, folds, guess, good


def test_cross_fitted_weights_favour_the_better_member_and_pool_each_fold(pair):
    y, folds, guess, good = pair
    f = fuse_results(_result(guess, y, folds, 'a'), _result(good, y, folds, 'b'))
    w = f['model']['weights']
    assert f['model']['weight'] == 'cross-fitted' and f['model']['pool'] == 'log' and sorted(w) == [0, 1, 2, 3]
    assert all(v > 0.5 for v in w.values())
    p = pd.DataFrame(f['predictions']).set_index('path')
    for k in range(4):
        i = folds == k
        P = pool_probs([guess[i], good[i]], [1 - w[k], w[k]], 'log')
        got = p.loc[[f'c{j}.wav' for j in np.flatnonzero(i)], [f'p_{l}' for l in LABELS]].to_numpy()
        np.testing.assert_allclose(got, P, atol=1e-12)
    assert [d['weight'] for d in f['per_fold']] == [w[k] for k in range(4)]


def test_a_folds_weight_never_reads_its_own_labels(pair):
    y, folds, guess, good = pair
    w = fuse_results(_result(guess, y, folds, 'a'), _result(good, y, folds, 'b'))['model']['weights']
    y2 = np.where(folds == 2, (y + 1) % 3, y)                          # fold 2's labels all wrong
    w2 = fuse_results(_result(guess, y2, folds, 'a'), _result(good, y2, folds, 'b'))['model']['weights']
    assert w2[2] == w[2]
    assert any(w2[k] != w[k] for k in (0, 1, 3))                       # the other folds did read them


def test_a_fixed_weight_and_the_mean(pair):
    y, folds, guess, good = pair
    a, b = _result(guess, y, folds, 'a'), _result(good, y, folds, 'b')
    f = fuse_results(a, b, weight=0.3, pool='linear')
    assert f['model']['weight'] == 'fixed' and set(f['model']['weights'].values()) == {0.3}
    P = pd.DataFrame(f['predictions'])[[f'p_{l}' for l in LABELS]].to_numpy()
    np.testing.assert_allclose(P, 0.7 * guess + 0.3 * good, atol=1e-12)


def test_one_fold_has_nothing_to_choose_on(pair):
    y, folds, guess, good = pair
    one = np.zeros_like(folds)
    assert fuse_results(_result(guess, y, one, 'a'), _result(good, y, one, 'b'))['model']['weights'] == {0: 0.5}


def test_run_demo_end_to_end(tmp_path):
    from ser_kit.data import make_demo_corpus
    data = make_demo_corpus(tmp_path / 'corpus', n_actors=3, n_jobs=1)
    before = sorted(p.relative_to(data) for p in data.rglob('*'))
    with open(tmp_path / 'log.txt', 'w') as log:
        r = run_demo(data, tmp_path / 'report', folds=3, cnn_epochs=1, estimators=('logreg',), n_jobs=1, stdout=log)
    assert sorted(p.relative_to(data) for p in data.rglob('*')) == before          # nothing written beside the audio
    assert list(r['summary'].index) == ['classical', 'cnn', 'fusion']
    made = {p.name for p in (tmp_path / 'report').iterdir()}
    assert {'report.md', 'report.html', 'metrics.json', 'settings.json', 'predictions_fusion.csv'} <= made
    s = json.loads((tmp_path / 'report' / 'settings.json').read_text())
    fw = s['settings']['fusion']
    assert fw['pool'] == 'log' and len(fw['weights']) == 3 and all(0 <= v <= 1 for v in fw['weights'].values())
    log = (tmp_path / 'log.txt').read_text()
    assert "fusion (log pool; the CNN's weight in each fold, chosen on the other folds" in log
    for m in ('classical', 'cnn', 'fusion'):
        assert 0 <= r['results'][m]['uar'] <= 1 and r['results'][m]['n_files'] == 180


def test_an_emotion_a_fold_never_learned_counts_as_probability_zero(pair):
    y, folds, guess, good = pair
    a = _result(guess, y, folds, 'a')
    for r in a['predictions']:
        if r['fold'] == 3:                                             # fold 3's model had no 'neutral' column
            r.pop('p_neutral'); s = r['p_angry'] + r['p_sad']; r['p_angry'] /= s; r['p_sad'] /= s
            r['prediction'] = 'angry' if r['p_angry'] > r['p_sad'] else 'sad'
    b = _result(good, y, folds, 'b')
    f = pd.DataFrame(fuse_results(a, b, weight=0)['predictions'])
    assert f[['p_neutral', 'p_angry', 'p_sad']].notna().all().all()
    assert list(f.prediction) == [r['prediction'] for r in a['predictions']]    # weight 0: member a, as it answered
    bad = _result(guess, y, folds, 'a'); bad['predictions'][5]['p_sad'] = float('nan')
    with pytest.raises(SettingError, match='c5.wav.*do not sum to 1'): fuse_results(bad, b)


@pytest.mark.parametrize('w', [float('nan'), 1.5, -0.1, '0.5'])
def test_a_weight_outside_0_1_is_refused(pair, w):
    y, folds, guess, good = pair
    with pytest.raises(SettingError, match='from 0 to 1'): fuse_results(_result(guess, y, folds, 'a'),
                                                                        _result(good, y, folds, 'b'), weight=w)


def test_results_that_cannot_be_fused_are_refused_in_one_line(pair):
    y, folds, guess, good = pair
    a, b = _result(guess, y, folds, 'a'), _result(good, y, folds, 'b')
    with pytest.raises(SettingError, match='different protocols'): fuse_results(a, dict(b, protocol='random'))
    named = _result(good, y, [f'f{k}' for k in folds], 'b')
    with pytest.raises(SettingError, match='share no clip'): fuse_results(a, named)     # numbers vs text
    odd = _result(guess, y, folds, 'a'); odd['predictions'][0]['emotion'] = 'bored'
    with pytest.raises(SettingError, match='bored'): fuse_results(odd, b)


def test_folds_named_by_text_and_a_partial_pair(pair):
    y, folds, guess, good = pair
    names = [f'f{k}' for k in folds]
    f = fuse_results(_result(guess, y, names, 'a'), _result(good, y, names, 'b'))
    assert sorted(f['model']['weights']) == ['f0', 'f1', 'f2', 'f3']
    one = np.flatnonzero(folds == 0)                                   # the second result ran one fold only
    part = fuse_results(_result(guess, y, folds, 'a'), _result(good[one], y[one], folds[one], 'b'))
    assert part['folds'] == 1 and part['n_files'] == 30 and part['model']['weights'] == {0: 0.5}
