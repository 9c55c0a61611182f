"""ser_kit.models: the one home of the model interface, metrics, learning curves and safe model folders."""
import json, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from ser_kit.data import SerKitError, SettingError, OutputPathError
from ser_kit.models import (ModelFileError, CheckpointError, UnsafeModelError, uar, metrics, confusion_frame, per_class_recall,
                            weighted_mean, choose_val_speakers, history_frame, plot_history, atomic_folder, write_description,
                            read_description, model_description, folder_manifest, Recognizer, make_model, load_model,
                            MODEL_TYPES, cross_validate, bench_predict)


def test_error_hierarchy():
    for cls in (ModelFileError, CheckpointError, UnsafeModelError):
        assert issubclass(cls, SerKitError) and issubclass(cls, ValueError)
    assert issubclass(CheckpointError, ModelFileError)
    assert str(CheckpointError('m', 'broken')) == 'm: broken' and str(SettingError(None, 'bad')) == 'bad'


def test_one_uar_everywhere():
    y, p = ['a', 'a', 'a', 'b'], ['a', 'a', 'b', 'b']
    assert uar(y, p) == pytest.approx((2 / 3 + 1) / 2)
    assert metrics(y, p)['uar'] == uar(y, p) == np.mean(list(per_class_recall(y, p).values()))


def test_confusion_counts_are_integers_and_rows_are_true():
    cm = confusion_frame(['sad', 'sad', 'angry'], ['angry', 'sad', 'angry'], ['sad', 'angry'])
    assert np.issubdtype(cm.to_numpy().dtype, np.integer)
    assert cm.loc['sad', 'angry'] == 1 and cm.loc['angry', 'angry'] == 1 and cm.to_numpy().sum() == 3
    pc = confusion_frame(['sad', 'sad', 'angry'], ['angry', 'sad', 'angry'], ['sad', 'angry'], percent=True)
    assert pc.loc['sad'].tolist() == [50.0, 50.0]


def test_confusion_has_no_pandas_warning(recwarn):
    confusion_frame(['a', 'b'], ['a', 'a'], percent=True)
    assert not [w for w in recwarn if 'pandas' in str(w.category).lower() or 'Pandas' in str(w.message)]


def test_confusion_raises_no_warning_at_all():
    "Issue 18.6: with every warning an error (pandas' Pandas4Warning included), counts, percents, an empty row."
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for pct in (False, True):
            cm = confusion_frame(['sad', 'sad', 'angry'], ['angry', 'sad', 'neutral'], ['sad', 'angry', 'happy'], percent=pct)
            assert cm.loc['happy'].sum() == 0                        # a class never seen: a row of zeros, no 0/0


def test_weighted_mean_is_the_one_fusion():
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert weighted_mean([a, b], [3, 1]).tolist() == [[0.75, 0.25]]
    with pytest.raises(SettingError): weighted_mean([a, b], [0, 0])


def test_validation_speakers_never_all_and_reproducible(demo):
    v = choose_val_speakers(demo, 0.9, seed=1)
    assert 1 <= len(v) < demo.speaker.nunique() and v == choose_val_speakers(demo, 0.9, seed=1)


def test_history_schema_reads_old_wav2vec2_histories():
    old = pd.DataFrame(dict(train_loss=[1.0, 0.5], val_loss=[1.1, 0.9], uar=[0.2, 0.4]), index=pd.Index([1, 2], name='epoch'))
    h = history_frame(old)
    assert list(h.columns[:4]) == ['epoch', 'train_loss', 'val_loss', 'val_uar'] and h.epoch.tolist() == [1, 2]
    import matplotlib; matplotlib.use('Agg')
    assert plot_history({'a': old, 'b': h}) is not None


class _Fake:
    model_type, labels, class_counts_, needs = 'demo', ['a', 'b'], None, ()
    def settings(self): return dict(seed=0)


def _save(folder, payload=b'1234'):
    with atomic_folder(folder) as d:
        (d / 'w.bin').write_bytes(payload); (d / 'sub').mkdir(); (d / 'sub' / 'x.txt').write_text('x')
        write_description(d, model_description(_Fake()))


def test_model_folder_round_trip_and_manifest(tmp_path):
    _save(tmp_path / 'm')
    desc = read_description(tmp_path / 'm', 'demo')
    assert set(desc['files']) == {'w.bin', 'sub/x.txt'} and desc['format_version'] == 3
    for key in ('model_type', 'labels', 'features', 'training', 'class_counts', 'versions'): assert key in desc


def test_interrupted_save_keeps_the_old_model(tmp_path):
    _save(tmp_path / 'm')
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / 'm') as d:
            (d / 'w.bin').write_bytes(b'new'); raise RuntimeError('power cut')
    assert (tmp_path / 'm' / 'w.bin').read_bytes() == b'1234' and read_description(tmp_path / 'm', 'demo')
    assert [p.name for p in tmp_path.iterdir()] == ['m']          # no temporary folder left behind


@pytest.mark.parametrize('damage', ['change', 'delete', 'no_manifest', 'not_json'])
def test_damaged_folder_is_refused(tmp_path, damage):
    _save(tmp_path / 'm'); f = tmp_path / 'm' / 'ser_kit.json'
    if damage == 'change': (tmp_path / 'm' / 'sub' / 'x.txt').write_text('y')
    if damage == 'delete': (tmp_path / 'm' / 'w.bin').unlink()
    if damage == 'no_manifest': d = json.loads(f.read_text()); d.pop('files'); f.write_text(json.dumps(d))
    if damage == 'not_json': f.write_text('{')
    with pytest.raises(CheckpointError) as e: read_description(tmp_path / 'm', 'demo')
    assert str(tmp_path) in str(e.value)


def test_atomic_folder_never_replaces_a_users_folder_or_file(tmp_path):
    (tmp_path / 'mine').mkdir(); (tmp_path / 'mine' / 'thesis.txt').write_text('precious')
    (tmp_path / 'clip.wav').write_bytes(b'RIFF')
    for dest in ('mine', 'clip.wav'):
        with pytest.raises(OutputPathError): _save(tmp_path / dest)
    assert (tmp_path / 'mine' / 'thesis.txt').read_text() == 'precious' and (tmp_path / 'clip.wav').read_bytes() == b'RIFF'


def test_registry_and_settings():
    assert set(MODEL_TYPES) == {'classical', 'cnn', 'wav2vec2', 'fusion', 'dimensions'}
    with pytest.raises(SettingError, match='unknown model type'): make_model('svm')
    with pytest.raises(SettingError, match='not a setting'): make_model('classical', epochs=3)
    r = make_model('classical', seed=3)
    assert isinstance(r, Recognizer) and r.settings()['seed'] == 3 and r.history_ is None


def test_load_model_names_the_file(tmp_path):
    with pytest.raises(ModelFileError, match='no such model'): load_model(tmp_path / 'none.skops')
    (tmp_path / 'd').mkdir()
    with pytest.raises(ModelFileError, match='without ser_kit.json'): load_model(tmp_path / 'd')
    (tmp_path / 'd' / 'ser_kit.json').write_text('{"model_type": "magic"}')
    with pytest.raises(ModelFileError, match='unknown model type'): load_model(tmp_path / 'd')


def test_cross_validate_never_shares_speakers(demo):
    quick = lambda: make_model('classical', featureset='default', adapt='none', n_jobs=1)   # the folds are the point
    r = cross_validate(quick, demo, folds=2)
    assert r['folds'] == 2 and all(f['shared_speakers'] == 0 for f in r['per_fold'])
    assert r['model']['settings']['n_jobs'] == 1 and 'sklearn' in r['versions']
    with pytest.raises(SettingError): cross_validate(lambda: make_model('classical'), demo, folds=1)


def test_bench_predict_needs_one_call():
    with pytest.raises(SettingError, match='at least 1'): bench_predict(make_model('classical'), n=0)


@pytest.mark.parametrize('module', ['ser_kit.models', 'ser_kit.cnn', 'ser_kit.wav2vec2'])
def test_deep_models_do_not_import_the_classical_module(module):
    code = f"import sys, {module}; assert 'ser_kit.classical' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, '-c', code], check=True)
