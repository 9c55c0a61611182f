"""Hostile input, sixth round: the same file listed twice in a request (for one speaker or for two), speaker ids that
look like the ids of unknown speakers, and a dimensions model given files twice."""
import pandas as pd, pytest
from test_hostile_cli import run
from test_hostile_round4 import data, model   # 3 speakers x 6 clips, a quick model of them


def _csv_out(r, path):
    assert r.returncode == 0, r.stderr
    return pd.read_csv(path, dtype={'speaker': str})


def test_a_list_naming_a_file_twice_keeps_its_first_speaker(model, data, tmp_path):
    a0, a1 = sorted(map(str, data[0].rglob('*.wav')))[:2]
    pd.DataFrame(dict(path=[a0, a0, a1], speaker=['x', 'y', 'x'])).to_csv(tmp_path / 'l.csv', index=False)
    t = _csv_out(run('predict', model, tmp_path / 'l.csv', '--csv', tmp_path / 'o.csv'), tmp_path / 'o.csv')
    assert list(t.speaker) == ['x', 'x'] and list(t.speaker_clips) == [2, 2]


def test_a_speaker_called_like_an_unknown_one_is_not_pooled_with_it(model, data, tmp_path):
    from ser_kit.models import load_model
    files = sorted(map(str, data[0].rglob('*.wav')))[:3]
    t = load_model(model).predict_table(files, speakers=[' ?1 ', None, '?1'])
    assert list(t.speaker_clips) == [2, 1, 2] and t.speaker[1] not in ('?1', ' ?1 ')


def test_the_same_file_twice_in_the_api_is_one_clip(model, data):
    from ser_kit.models import load_model
    rec, files = load_model(model), sorted(map(str, data[0].rglob('*.wav')))[:3]
    once = rec.predict_table(files, speakers=['s'] * 3)
    twice = rec.predict_table(files + files[:1], speakers=['s'] * 4)
    assert list(twice.speaker_clips) == [3] * 4 and len(twice) == 4
    pd.testing.assert_frame_equal(twice.iloc[:3].drop(columns='speaker_clips'), once.drop(columns='speaker_clips'))
    assert twice.iloc[3, 1:].tolist() == twice.iloc[0, 1:].tolist()
