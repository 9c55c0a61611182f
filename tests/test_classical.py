"Classical models: speaker-grouped CV, safe and atomic model files (0.1.0 ones too), the Recognizer API."
import json, os, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest, skops.io as sio
from ser_kit.classical import *
from ser_kit.models import (Recognizer, ModelFileError, UnsafeModelError, metrics, ordered_labels, cross_validate,
                            load_model)

N_JOBS = 1


@pytest.fixture(scope='module')
def small(demo):
    "Four demo actors (240 files): enough for 2-fold speaker CV, quick to featurise."
    return demo[demo.speaker.isin(sorted(demo.speaker.unique())[:4])].reset_index(drop=True)


@pytest.fixture(scope='module')
def model(small):
    return EmotionRecognizer('logreg', n_jobs=N_JOBS).fit(small[small.speaker != small.speaker.max()])


@pytest.fixture(scope='module')
def model_file(model, tmp_path_factory):
    return model.save(tmp_path_factory.mktemp('m') / 'model.skops')


class Spy(Recognizer):
    "A recogniser that remembers its training speakers and predicts uniformly (tests the generic machinery)."
    model_type = 'spy'
    log = []
    def fit(self, manifest):
        m = self.prepare_manifest(manifest); self.train_speakers = set(m.speaker); return self
    def predict_proba_batch(self, paths, speakers=None):
        Spy.log.append((self.train_speakers, list(paths)))
        return np.full((len(paths), len(self.labels)), 1 / len(self.labels)), list(paths), pd.DataFrame(columns=['path', 'error'])


# ---- metrics --------------------------------------------------------------------------------------------------------
def test_metrics_uar_is_mean_recall():
    r = metrics(['sad'] * 3 + ['angry'], ['sad'] * 4)
    assert r['uar'] == 0.5 and r['wa'] == 0.75 and r['labels'] == ['sad', 'angry'] and r['confusion'] == [[3, 0], [1, 0]]
    assert ordered_labels(['zzz', 'angry', 'neutral']) == ['neutral', 'angry', 'zzz']


# ---- grouped CV never leaks a speaker --------------------------------------------------------------------------------
@pytest.mark.parametrize('folds', [2, 4])
def test_speaker_cv_never_leaks(demo, folds):
    Spy.log.clear()
    r = cross_validate(lambda: Spy(), demo, 'speaker', folds=folds)
    spk = dict(zip(demo.path, demo.speaker))
    assert len(Spy.log) == folds and r['folds'] == folds
    for train_spk, test_paths in Spy.log:
        assert not train_spk & {spk[p] for p in test_paths}
    assert all(f['shared_speakers'] == 0 for f in r['per_fold'])
    assert sorted(p for _, ps in Spy.log for p in ps) == sorted(demo.path)   # every file tested exactly once


def test_random_protocol_leaks_on_purpose(demo):
    r = cross_validate(lambda: Spy(), demo, 'random', folds=3)
    assert all(f['shared_speakers'] > 0 for f in r['per_fold'])
    with pytest.raises(ValueError, match='protocol'): cross_validate(lambda: Spy(), demo, 'leaky')


def test_grid_search_is_grouped_saved_and_reloaded(small, tmp_path):
    res = grid_search(small, ['logreg', 'tree'], folds=2, n_jobs=N_JOBS, results_dir=tmp_path)
    assert set(res.estimator) == {'logreg', 'tree'} and res.uar.between(0, 1).all()
    assert res.attrs['settings']['cv'] == 'speaker_folds' and 'versions' in res.attrs
    assert len(list(tmp_path.glob('*.csv'))) == 1 and len(list(tmp_path.glob('*.json'))) == 1
    again = grid_search(small, ['logreg', 'tree'], folds=2, n_jobs=N_JOBS, results_dir=tmp_path)
    assert 'loaded_from' in again.attrs and again.uar.tolist() == pytest.approx(res.uar.tolist())
    name, params = best_estimator(res)
    assert name in ('logreg', 'tree') and isinstance(params, dict)


# ---- EmotionRecognizer API ---------------------------------------------------------------------------------------------
def test_recognizer_api(model, small):
    test = small[small.speaker == small.speaker.max()]
    p = model.predict_proba(test.path.iloc[0])
    assert list(p) == model.labels and abs(sum(p.values()) - 1) < 1e-6
    assert model.predict(test.path.iloc[0]) == [max(p, key=p.get)]
    assert 0 <= model.score(test) <= 1
    cm = model.confusion_matrix(test)
    assert cm.shape == (8, 8) and cm.index[0] == 'true_neutral' and cm.columns[0] == 'predicted_neutral'
    assert np.allclose(cm.sum(axis=1), 100)
    raw = model.confusion_matrix(test, percentage=False, labeled=False)
    assert list(raw.index) == model.labels and raw.values.sum() == len(test)
    assert model.samples_by_class().sum() == (small.speaker != small.speaker.max()).sum()


def test_emotions_subset_and_balance(small):
    r = EmotionRecognizer('logreg', emotions=['angry', 'calm', 'happy'], balance=True, n_jobs=N_JOBS).fit(small)
    assert r.labels == ['calm', 'happy', 'angry'] and r.samples_by_class().nunique() == 1
    assert set(r.predict(small.path.iloc[:5].tolist())) <= set(r.labels)
    with pytest.raises(ValueError, match='bliss'): EmotionRecognizer(emotions=['bliss', 'sad']).fit(small)
    with pytest.raises(RuntimeError, match='not trained'): EmotionRecognizer().predict_proba(small.path.iloc[0])


def test_predict_raises_naming_bad_file(model, tmp_path):
    (tmp_path / 'bad.wav').write_bytes(b'not audio at all')
    with pytest.raises(ValueError, match='bad.wav'): model.predict([str(tmp_path / 'bad.wav')])


# ---- save / load ------------------------------------------------------------------------------------------------------
def test_save_load_round_trip_identical(model, model_file, small):
    r2 = load_model(model_file)
    assert isinstance(r2, EmotionRecognizer) and r2.labels == model.labels and r2.featureset == model.featureset
    paths = small.path.iloc[::12].tolist()
    P1, ok1, _ = model.predict_proba_batch(paths); P2, ok2, _ = r2.predict_proba_batch(paths)
    assert ok1 == ok2 and np.array_equal(P1, P2)
    d = r2.description_
    assert d['versions']['sklearn'] and d['training']['seed'] == 0 and d['features']['feature_names'] == model.feature_names_
    assert d['model_type'] == 'classical' and d['labels'] == model.labels and d['estimator'] == 'logreg'


def test_a_feature_set_that_changed_since_saving_names_the_model_file(model_file, small):
    r = load_model(model_file); r.feature_names_ = r.feature_names_[:-1]   # as if the feature set gained a feature
    with pytest.raises(ModelFileError, match=r'model\.skops.*retrain'): r.predict_proba_batch(small.path.iloc[:1])
    tone = 0.1 * np.sin(np.arange(16000, dtype='f4') / 10)
    with pytest.raises(ModelFileError, match=r'model\.skops.*retrain'): r.predict_proba_audio([tone])


def test_tampered_model_is_refused(model_file, tmp_path):
    pipe, meta, _ = read_model_file(model_file)
    evil = tmp_path / 'evil.skops'
    sio.dump(dict(format=MODEL_FORMAT, format_version=1, pipeline=pipe, meta=json.dumps(meta), hook=os.system), evil)
    with pytest.raises(UnsafeModelError, match='evil.skops.*allow-list'): load_model(evil)
    b = bytearray(Path(model_file).read_bytes())
    for i in range(len(b) // 3, len(b) // 3 + 200): b[i] ^= 0xFF
    (tmp_path / 'flipped.skops').write_bytes(b)
    with pytest.raises(ModelFileError, match='flipped.skops'): load_model(tmp_path / 'flipped.skops')
    (tmp_path / 'garbage.skops').write_bytes(os.urandom(3000))
    with pytest.raises(ModelFileError, match='garbage.skops'): load_model(tmp_path / 'garbage.skops')
    (tmp_path / 'cut.skops').write_bytes(Path(model_file).read_bytes()[:1000])
    with pytest.raises(ModelFileError, match='cut.skops'): load_model(tmp_path / 'cut.skops')
    sio.dump({'a': 1}, tmp_path / 'other.skops')
    with pytest.raises(ModelFileError, match='not a ser_kit'): load_model(tmp_path / 'other.skops')


@pytest.mark.parametrize('name', list(ESTIMATORS))
def test_every_zoo_estimator_saves_and_loads(name, tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 6)), np.repeat(['angry', 'sad', 'happy'], 20)
    p = make_pipeline(name, **({'max_iter': 50} if name == 'mlp' else {})).fit(X, y)
    f = write_model_file(tmp_path / f'{name}.skops', p, {'labels': sorted(set(y))})
    p2, meta, _ = read_model_file(f)
    assert np.array_equal(p.predict_proba(X), p2.predict_proba(X)) and meta == {'labels': sorted(set(y))}


# ---- compatibility, atomic saves, consistency -------------------------------------------------------------------------
FIXTURES = Path(__file__).parent / 'fixtures' / 'v0.1.0'


def test_v010_model_loads_and_predicts_the_same(demo):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # the feature set's code hash may differ from 0.1.0's
        r = load_model(FIXTURES / 'classical.skops')
    assert isinstance(r, EmotionRecognizer) and r.labels == ['neutral', 'happy', 'sad', 'angry']
    assert r.settings()['estimator'] == 'logreg' and r.class_counts_.tolist() == [16, 32, 32, 32]
    expected = json.loads((FIXTURES / 'expected.json').read_text())['classical.skops']
    clips = sorted(demo.path)[:3]
    P, ok, _ = r.predict_proba_batch(clips)
    assert ok == [str(c) for c in clips]
    want = np.array([[expected[Path(c).name][l] for l in r.labels] for c in clips])
    np.testing.assert_allclose(P, want, atol=1e-3)   # loading has removed each clip's mean since: ~1e-4 apart


def test_interrupted_save_keeps_the_old_model(model, model_file, small, tmp_path, monkeypatch):
    f = tmp_path / 'model.skops'; f.write_bytes(Path(model_file).read_bytes())
    before = f.read_bytes()
    def crash(obj, file): Path(file).write_bytes(b'half a model'); raise OSError('disk full')
    monkeypatch.setattr(sio, 'dump', crash)
    other = EmotionRecognizer('tree', n_jobs=N_JOBS).fit(small)
    with pytest.raises(OSError, match='disk full'): other.save(f)
    monkeypatch.undo()
    assert f.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ['model.skops']
    r = load_model(f); paths = small.path.iloc[:4].tolist()
    assert r.estimator == 'logreg' and np.array_equal(r.predict_proba_batch(paths)[0], model.predict_proba_batch(paths)[0])


def test_label_list_not_matching_pipeline_is_refused(model_file, tmp_path):
    pipe, meta, _ = read_model_file(model_file)
    bad = tmp_path / 'relabelled.skops'
    write_model_file(bad, pipe, meta | dict(labels=list(reversed(meta['labels']))[:-1] + ['boredom']))
    with pytest.raises(ModelFileError, match='relabelled.skops: the label list'): load_model(bad)
    dup = tmp_path / 'duplicated.skops'
    write_model_file(dup, pipe, meta | dict(labels=meta['labels'][:-1] + meta['labels'][:1]))
    with pytest.raises(ModelFileError, match='duplicated.skops'): load_model(dup)


def test_settings_round_trip(small, tmp_path):
    rec = EmotionRecognizer()
    assert rec.settings() == dict(estimator='logreg', featureset='rich', params={}, emotions=None, balance=False,
                                  seed=0, n_jobs=-1, progress=False, adapt='em', speeds=[0.9, 1.1], augment=[])
    custom = EmotionRecognizer('tree', params=dict(max_depth=4), emotions=['sad', 'angry', 'happy'], balance=True,
                               seed=3, n_jobs=N_JOBS).fit(small)
    for r in (rec.fit(small), custom):
        assert EmotionRecognizer.load(r.save(tmp_path / 'r.skops')).settings() == r.settings()


def test_bad_settings_are_setting_errors():
    from ser_kit.data import SettingError
    with pytest.raises(SettingError, match='unknown feature set'): EmotionRecognizer(featureset='nope')
    with pytest.raises(SettingError, match='unknown estimator'): EmotionRecognizer('xgboost')


def test_tuned_recognizer_lives_with_the_classical_model(small, tmp_path):
    from ser_kit.classical import TunedRecognizer
    train = small[small.speaker != small.speaker.max()]
    t = TunedRecognizer(['logreg', 'tree'], inner_folds=2, n_jobs=N_JOBS, results_dir=tmp_path).fit(train)
    assert t.estimator in ('logreg', 'tree') and set(t.search_.estimator) == {'logreg', 'tree'}
    assert type(load_model(t.save(tmp_path / 't.skops'))) is EmotionRecognizer
