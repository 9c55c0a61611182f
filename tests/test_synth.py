"The demo-corpus synthesiser (ser_kit.synth): its names stay importable from ser_kit.data, either module imports first."
import subprocess, sys
import numpy as np, pytest
import ser_kit.data as data
import ser_kit.synth as synth


@pytest.mark.parametrize('first', ['ser_kit.synth', 'ser_kit.data'])
def test_either_module_can_be_imported_first(first):
    code = f'import {first}; from ser_kit.data import make_demo_corpus, EMOTION_RECIPES; from ser_kit.synth import write_actor'
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_public_synth_name_is_reexported_by_data():
    for name in synth.__all__:
        assert getattr(data, name) is getattr(synth, name), name
        assert name in data.__all__, name          # `from ser_kit.data import *` still brings it


def test_get_corpus_builds_the_demo_corpus_through_data(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv('SER_KIT_DATA', raising=False); monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, 'KAGGLE_INPUT', tmp_path / 'no_kaggle')
    seen = []
    def fake(**kw): seen.append(kw); return 'demo'
    monkeypatch.setattr(data, 'make_demo_corpus', fake)   # what tests of other modules patch
    monkeypatch.setattr(data, 'load_corpus', lambda src: src)
    assert data.get_corpus(n_actors=2, seed=3) == 'demo' and seen == [dict(n_actors=2, seed=3)]
    out = capsys.readouterr().out
    assert 'synthetic demo corpus' in out and str(tmp_path) not in out


def test_banner_names_the_corpus_not_a_machine_path(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv('SER_KIT_DATA', raising=False); monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, 'KAGGLE_INPUT', tmp_path / 'no_kaggle')
    monkeypatch.setattr(data, 'make_demo_corpus', lambda **kw: tmp_path / 'cache' / 'demo-v1-a8-s0')
    monkeypatch.setattr(data, 'load_corpus', lambda src: src)
    data.get_corpus()
    out = capsys.readouterr().out
    assert 'demo-v1-a8-s0' in out and str(tmp_path) not in out


def test_strong_is_the_normal_change_scaled():
    angry = synth.EMOTION_RECIPES['angry']
    assert synth.scale_recipe(angry, 'strong')['loud_db'] == pytest.approx(angry['loud_db'] * synth.STRONG_GAIN)
    with pytest.raises(ValueError, match="'loud'"): synth.scale_recipe(angry, 'loud')


def test_one_file_depends_only_on_seed_actor_and_codes():
    a = synth.synth_file(0, 3, (5, 2, 1, 1)); b = synth.synth_file(0, 3, (5, 2, 1, 1))
    c = synth.synth_file(1, 3, (5, 2, 1, 1))
    assert a.dtype == np.float32 and np.array_equal(a, b) and not np.array_equal(a[:len(c)], c[:len(a)])
    assert np.abs(a).max() < 1


def test_bad_demo_arguments_are_setting_errors(tmp_path):
    for kw, msg in ((dict(n_actors=0), 'n_actors'), (dict(seed=-1), 'seed'), (dict(sr=100), 'sr must be')):
        with pytest.raises(data.SettingError, match=msg): synth.make_demo_corpus(tmp_path / 'x', **kw)
