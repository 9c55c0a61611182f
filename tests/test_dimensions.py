"""Dimensional models (ser_kit.dimensions): targets, train/predict/save/load, tampered files, CCC with intervals."""
import json
import numpy as np, pandas as pd, pytest
from ser_kit.classical import AROUSAL_VALENCE, ccc
from ser_kit.data import SettingError
from ser_kit.dimensions import (DimensionRecognizer, dimension_targets_of, dimension_scores, cross_validate_dimensions,
                                SOURCE_TABLE)
from ser_kit.models import ModelFileError


@pytest.fixture(scope='module')
def split(demo):
    test_spk = sorted(demo.speaker.unique())[-2:]
    return demo[~demo.speaker.isin(test_spk)], demo[demo.speaker.isin(test_spk)]


@pytest.fixture(scope='module')
def model(split):
    return DimensionRecognizer(featureset='prosody', n_jobs=1).fit(split[0])


def test_targets_from_the_mapping_table_and_intensity(demo):
    Y, src = dimension_targets_of(demo)
    assert list(Y.columns) == ['arousal', 'valence', 'intensity'] and src['arousal'] == SOURCE_TABLE
    assert (Y.arousal == demo.emotion.map(lambda e: AROUSAL_VALENCE[e][0])).all()
    assert (Y.intensity == (demo.intensity == 'strong').astype(float)).all()
    assert list(dimension_targets_of(demo.drop(columns='intensity'))[0].columns) == ['arousal', 'valence']


def test_manifest_ratings_override_the_mapping(demo, split):
    "A corpus's own arousal column wins over the table: a model trained on reversed arousal predicts it reversed."
    rated = demo.assign(arousal=-demo.emotion.map(lambda e: AROUSAL_VALENCE[e][0]))
    Y, src = dimension_targets_of(rated, ['arousal', 'valence'])
    assert (Y.arousal == rated.arousal).all() and "'arousal' column" in src['arousal']
    assert src['valence'] == SOURCE_TABLE
    tr = rated.loc[split[0].index]; te = split[1]
    m = DimensionRecognizer(featureset='prosody', dimensions=['arousal'], n_jobs=1, adapt=None).fit(tr)
    assert "'arousal' column" in m.targets_['arousal']
    p = m.predict_table(list(te.path)).arousal.to_numpy()
    assert np.corrcoef(p, -te.emotion.map(lambda e: AROUSAL_VALENCE[e][0]))[0, 1] > 0.5
    first = demo.speaker == demo.speaker.iloc[0]
    empty = demo.assign(valence=np.where(first, np.nan, 0.3))          # empty ratings: left out of that dimension
    assert dimension_targets_of(empty, ['valence'])[0].valence.isna().sum() == first.sum()


def test_bad_targets_are_setting_errors(demo):
    with pytest.raises(SettingError, match='not numbers'): dimension_targets_of(demo.assign(arousal='loud'))
    with pytest.raises(SettingError, match='intensity'):
        dimension_targets_of(demo.drop(columns='intensity'), ['intensity'])
    with pytest.raises(SettingError, match='dimensions'): dimension_targets_of(demo, ['dominance'])
    with pytest.raises(SettingError, match='mapping table'):
        dimension_targets_of(demo.assign(emotion='contempt'), ['valence'])


def test_train_predict_save_load_round_trip(model, split, tmp_path):
    te = split[1]; paths, spk = list(te.path), list(te.speaker)
    t = model.predict_table(paths, speakers=spk)
    assert list(t.columns) == ['path', 'arousal', 'valence', 'intensity', 'speaker', 'speaker_clips']
    assert len(t) == len(te)
    assert np.isfinite(t[['arousal', 'valence', 'intensity']].to_numpy()).all()
    out = model.save(tmp_path / 'dims')
    names = sorted(p.name for p in out.iterdir())
    assert names == ['arousal.skops', 'intensity.skops', 'ser_kit.json', 'valence.skops']
    desc = json.loads((out / 'ser_kit.json').read_text())
    assert desc['model_type'] == 'dimensions' and desc['targets']['arousal'] == SOURCE_TABLE
    back = DimensionRecognizer.load(out)
    b = back.predict_table(paths, speakers=spk)
    np.testing.assert_allclose(b[['arousal', 'valence', 'intensity']], t[['arousal', 'valence', 'intensity']])
    assert back.adaptation() == model.adaptation() == 'speaker-adaptive (z)' and back.targets_ == model.targets_
    model.save(out)                                                     # a model folder may be replaced


def test_unreadable_files_are_skipped_not_fatal(model, split, tmp_path):
    bad = tmp_path / 'bad.wav'; bad.write_bytes(b'RIFF0000WAVEjunk')
    t = model.predict_table([split[1].path.iloc[0], str(bad), str(tmp_path / 'absent.wav')])
    assert len(t) == 1 and len(t.attrs['skipped']) == 2
    with pytest.raises(Exception, match='bad.wav|absent.wav'): model.predict([str(bad)])


@pytest.mark.parametrize('how', ['member', 'description', 'swap'])
def test_tampered_folder_is_refused(model, tmp_path, how):
    out = model.save(tmp_path / 'dims')
    if how == 'member':
        f = out / 'valence.skops'; f.write_bytes(f.read_bytes()[:-9] + b'tampered!')
    elif how == 'description':
        d = json.loads((out / 'ser_kit.json').read_text()); d['dimensions'] = ['arousal', 'dominance']
        (out / 'ser_kit.json').write_text(json.dumps(d))
    else:                                            # members swapped and the manifest rewritten to match
        from ser_kit.models import folder_manifest
        a, v = (out / 'arousal.skops').read_bytes(), (out / 'valence.skops').read_bytes()
        (out / 'arousal.skops').write_bytes(v); (out / 'valence.skops').write_bytes(a)
        d = json.loads((out / 'ser_kit.json').read_text()); d['files'] = folder_manifest(out)
        (out / 'ser_kit.json').write_text(json.dumps(d))
    with pytest.raises(ModelFileError) as e: DimensionRecognizer.load(out)
    assert '\n' not in str(e.value) and str(out) in str(e.value)


def test_not_a_folder_or_not_skops(tmp_path):
    f = tmp_path / 'x.skops'; f.write_bytes(b'not a model')
    with pytest.raises(ModelFileError): DimensionRecognizer.load(f)
    with pytest.raises(ModelFileError): DimensionRecognizer.load(tmp_path / 'absent')


def test_ccc_per_dimension_with_speaker_intervals():
    rng = np.random.default_rng(0); spk = np.repeat([f's{i}' for i in range(8)], 20)
    t = pd.DataFrame({'arousal': rng.normal(size=160), 'valence': rng.normal(size=160)})
    p = pd.DataFrame({'arousal': t.arousal + 0.3 * rng.normal(size=160), 'valence': rng.normal(size=160)})
    s = dimension_scores(t, p, spk, n_boot=300)
    assert list(s.index) == ['arousal', 'valence'] and (s.speakers == 8).all()
    assert s.loc['arousal', 'ccc'] == pytest.approx(ccc(t.arousal, p.arousal))
    assert s.loc['arousal', 'ccc_low'] < s.loc['arousal', 'ccc'] < s.loc['arousal', 'ccc_high']
    assert s.loc['arousal', 'ccc_low'] > 0.7 and s.loc['valence', 'ccc_low'] < 0 < s.loc['valence', 'ccc_high']


def test_cross_validation_is_speaker_independent(demo):
    r = cross_validate_dimensions(lambda: DimensionRecognizer(featureset='prosody', n_jobs=1, adapt=None), demo,
                                  folds=2, n_boot=100)
    P = r['predictions']
    assert r['folds'] == 2 and len(P) == len(demo)
    assert not set(P[P.fold == 0].speaker) & set(P[P.fold == 1].speaker)
    assert set(r['scores'].index) == {'arousal', 'valence', 'intensity'} and r['scores'].loc['arousal', 'ccc'] > 0.4
    assert {'ccc_low', 'ccc_high'} <= set(r['scores'].columns) and 'speakers' in r['bootstrap']


def test_settings_and_wrong_uses(model):
    with pytest.raises(SettingError, match="'z' or None"): DimensionRecognizer(adapt='em')
    with pytest.raises(SettingError, match='regressor'): DimensionRecognizer('nope')
    with pytest.raises(SettingError, match='feature set'): DimensionRecognizer(featureset='nope')
    with pytest.raises(SettingError, match='probabilities'): model.predict_proba_batch([])


def test_registration_wiring(model, tmp_path, monkeypatch):
    "Once 'dimensions' is in MODEL_TYPES, load_model and make_model find the dimensional model (wiring for 01b)."
    from ser_kit.models import MODEL_TYPES, load_model, make_model
    out = model.save(tmp_path / 'dims')
    monkeypatch.setitem(MODEL_TYPES, 'dimensions', 'ser_kit.dimensions.DimensionRecognizer')
    back = load_model(out)
    assert isinstance(back, DimensionRecognizer) and back.labels == model.labels
    m = make_model('dimensions', emotions=None, balance=None, seed=0, n_jobs=1, featureset='prosody', regressor='ridge')
    assert isinstance(m, DimensionRecognizer) and m.regressor == 'ridge'
    with pytest.raises(ModelFileError, match="dimensions"): load_model(out / 'arousal.skops')   # a member alone
