"""Speaker adaptation (ser_kit.adapt, EmotionRecognizer(adapt=...)): never reads labels, never flips a one-emotion speaker."""
import numpy as np, pandas as pd, pytest
from ser_kit.adapt import SpeakerNorm, norm_from_dict, even_mix, even_speakers
from ser_kit.classical import EmotionRecognizer
from ser_kit.data import SettingError
from ser_kit.models import cross_validate, load_model, skew_rows


@pytest.fixture(scope='module')
def split(demo):
    test_spk = sorted(demo.speaker.unique())[-2:]
    return demo[~demo.speaker.isin(test_spk)], demo[demo.speaker.isin(test_spk)]


@pytest.fixture(scope='module')
def em_model(split):
    return EmotionRecognizer(adapt='em', n_jobs=1).fit(split[0])


def test_labels_are_never_read_at_prediction(demo):
    "Shuffle the test speakers' labels: the predictions stay the same."
    m = demo.reset_index(drop=True); te = np.flatnonzero(m.speaker.isin(sorted(m.speaker.unique())[-2:]))
    tr = np.setdiff1d(np.arange(len(m)), te); shuffled = m.copy()
    shuffled.loc[te, 'emotion'] = np.random.default_rng(0).permutation(m.emotion.to_numpy()[te])
    adaptive = lambda: EmotionRecognizer(adapt='em', featureset='default', n_jobs=1)   # with speed-perturbed speakers
    runs = [cross_validate(adaptive, x, folds=[(tr, te)]) for x in (m, shuffled)]
    a, b = [{p['path']: p['prediction'] for p in r['predictions']} for r in runs]
    assert a == b and len(a) == len(te)


def test_one_clip_of_an_unknown_speaker_gets_a_prediction(em_model, split):
    clip = split[1].path.iloc[0]
    t = em_model.predict_table([clip], speakers=['someone'])
    assert len(t) == 1 and t.speaker_clips.tolist() == [1] and np.isclose(t.filter(like='p_').sum(1), 1).all()
    assert em_model.predict([clip]) == em_model.predict([clip], speakers=['x'])   # alone = unknown speaker


def test_a_one_emotion_speaker_is_not_flipped(em_model, split):
    """A speaker who shows one emotion only (a demo actor's clips of one emotion): what the model gets right clip by clip
    (its training statistics, no speaker) stays right when it adapts to the speaker with all those clips."""
    checked = 0
    for (spk, emo), g in split[1].groupby(['speaker', 'emotion']):
        clips = g.path.tolist()
        alone = pd.Series(em_model.predict(clips)).value_counts()
        if alone.idxmax() != emo or alone.iloc[0] <= len(clips) / 2: continue   # only clear successes can be flipped
        together = pd.Series(em_model.predict(clips, speakers=[spk] * len(clips))).value_counts()
        others = together.drop(emo, errors='ignore')
        assert together.get(emo, 0) >= (others.max() if len(others) else 0), (spk, emo, dict(alone), dict(together))
        checked += 1                           # no other emotion overtakes the true one
    assert checked >= 3


def test_adaptive_model_round_trips(em_model, split, tmp_path):
    f = em_model.save(tmp_path / 'm.skops'); r = load_model(f)
    assert r.adapt == 'em' and r.adaptation() == 'speaker-adaptive (em)' and r.settings() == em_model.settings()
    paths = split[1].path.tolist()[:12]; spk = split[1].speaker.tolist()[:12]
    np.testing.assert_allclose(r.predict_proba_batch(paths, spk)[0], em_model.predict_proba_batch(paths, spk)[0], atol=1e-6)


def test_adaptation_changes_predictions_only_with_several_clips(em_model, split):
    paths = split[1].path.tolist(); spk = split[1].speaker.tolist()
    P_spk = em_model.predict_proba_batch(paths, spk)[0]; P_alone = em_model.predict_proba_batch(paths)[0]
    assert not np.allclose(P_spk, P_alone)


def test_skew_keeps_every_emotion_present(demo):
    spk = sorted(demo.speaker.unique())
    for k in (1, 2, 3):
        kept = demo[skew_rows(demo, sorted(demo.emotion.unique()), k, spk)]
        assert set(kept.emotion) == set(demo.emotion) and kept.groupby('speaker').emotion.nunique().max() == k


def test_adapted_and_unadapted_are_both_reported(demo):
    for a, name in ((None, 'none'), ('em', 'speaker-adaptive (em)')):
        quick = lambda: EmotionRecognizer(adapt=a, featureset='default', speeds=(), n_jobs=1)   # the report counts
        r = cross_validate(quick, demo, folds=2, skew=2)
        assert r['adaptation'] == name and r['skew'] == 2 and r['clips_per_speaker']['max'] <= 20


def test_bad_settings():
    with pytest.raises(SettingError): EmotionRecognizer(adapt='mean')
    with pytest.raises(SettingError): SpeakerNorm(prior=0)
    with pytest.raises(SettingError): SpeakerNorm().fit(np.zeros((4, 2)), list('abab'), ['s'] * 4)


def test_old_models_load_without_adaptation():
    from pathlib import Path
    r = load_model(Path(__file__).parent / 'fixtures' / 'v0.1.0' / 'classical.skops')
    assert r.adapt is None and r.adaptation() == 'none'


def test_even_mix_evens_broad_speakers(em_model, split):
    "`predict_table(even_mix=True)`: a broad, well-heard speaker's mean probabilities come out even; others unchanged."
    te = split[1]; paths, spk = te.path.tolist(), te.speaker.tolist()
    ev = em_model.predict_table(paths, spk, even_mix=True); P = ev.filter(like='p_').to_numpy()
    assert ev.even_mix.all() and 'even mix' in ev.attrs['adaptation']      # demo speakers: 60 clips, every emotion
    for s in set(spk): np.testing.assert_allclose(P[(ev.speaker == s).to_numpy()].mean(0), 1 / 8, atol=1e-3)
    one = em_model.predict_table(paths[:1], spk[:1], even_mix=True)        # a lone clip is never evened
    assert not one.even_mix.any()
    np.testing.assert_allclose(one.filter(like='p_'), em_model.predict_table(paths[:1], spk[:1]).filter(like='p_'))
    unknown = em_model.predict_table(paths[:20], even_mix=True)            # no speakers: nothing to even
    assert 'even_mix' not in unknown
    np.testing.assert_allclose(unknown.filter(like='p_'), em_model.predict_table(paths[:20]).filter(like='p_'))


def test_even_mix_leaves_a_narrow_speaker_alone(em_model, split):
    "A speaker heard in two emotions (16 clips) spans too few emotions for the step: the model's answers stay."
    g = split[1][(split[1].speaker == split[1].speaker.iloc[0]) & split[1].emotion.isin(['angry', 'sad'])]
    t = em_model.predict_table(g.path.tolist(), g.speaker.tolist(), even_mix=True)
    assert len(t) == 16 and not t.even_mix.any()
    plain = em_model.predict_table(g.path.tolist(), g.speaker.tolist())
    np.testing.assert_allclose(t.filter(like='p_'), plain.filter(like='p_'))


def test_even_mix_uses_each_speakers_own_clips_in_any_order():
    "Shuffling the clips of a request moves each clip's answer with it; another speaker's clips change nothing."
    rng = np.random.default_rng(0); P = rng.dirichlet(np.ones(8), 60); spk = ['a'] * 30 + ['b'] * 30
    perm = rng.permutation(60)
    np.testing.assert_allclose(even_mix(P, spk)[perm], even_mix(P[perm], [spk[i] for i in perm]), atol=1e-12)
    np.testing.assert_allclose(even_mix(P, spk)[:30], even_mix(P[:30], spk[:30]), atol=1e-12)
    assert all(r['even'] for r in even_speakers(P, spk).values())


def test_even_mix_gate_is_not_rounded_and_unknown_speakers_stay_alone():
    "Breadth 6.997 of 8 is under 7; None / NaN speakers are each alone; a wrong number of speaker ids is refused."
    P = np.tile([0.3238] + [0.6762 / 7] * 7, (16, 1))
    assert not even_speakers(P, ['s'] * 16)['s']['even']
    Q = np.random.default_rng(1).dirichlet(np.ones(8) * 5, 20)
    assert even_speakers(Q, ['s'] * 20)['s']['even']                     # the same clips under one known speaker
    for unknown in ([None] * 20, [float('nan')] * 20, None):
        np.testing.assert_array_equal(even_mix(Q, unknown), Q)
    with pytest.raises(SettingError, match='one speaker per file'): even_mix(Q, ['s'] * 19)
    with pytest.raises(SettingError): even_mix(Q, 's' * 20)
    with pytest.raises(SettingError, match='table'): even_mix(Q[0], ['s'] * 8)
