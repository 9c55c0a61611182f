"""Hostile input, sixth round: the same file listed twice in a request (for one speaker or for two), speaker ids that
look like the ids of unknown speakers, and a dimensions model given files twice."""
import numpy as np, pandas as pd, pytest, soundfile as sf
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


# --- recordings as they come: a DC offset, telephone band, other formats and names, spreadsheet speaker ids

def _tone(sr=16000, s=1.0):
    t = np.arange(int(sr * s)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype('float32')


def test_a_dc_offset_changes_nothing(tmp_path):
    from ser_kit.data import load_audio
    from ser_kit.features import get_featureset
    sf.write(tmp_path / 'a.wav', _tone(), 16000, subtype='FLOAT'); sf.write(tmp_path / 'b.wav', _tone() + 0.002, 16000,
                                                                             subtype='FLOAT')
    a, b = load_audio(tmp_path / 'a.wav'), load_audio(tmp_path / 'b.wav')
    np.testing.assert_allclose(a, b, atol=1e-6)
    fs = get_featureset('rich'); np.testing.assert_allclose(fs.compute(a)[1], fs.compute(b)[1], rtol=1e-2, atol=1e-2)


def test_telephone_band_files_are_answered_with_a_warning(model, tmp_path):
    sf.write(tmp_path / 'tel.wav', _tone(8000), 8000); sf.write(tmp_path / 'wide.wav', _tone(), 16000)
    r = run('predict', model, tmp_path / 'tel.wav', tmp_path / 'wide.wav')
    assert r.returncode == 0 and r.stdout.count('\n') == 2, r.stderr
    assert '1 file(s) recorded below 16 kHz' in r.stderr and 'tel.wav (8000 Hz)' in r.stderr


def test_other_readable_formats_are_found_and_unreadable_recordings_reported(tmp_path):
    from ser_kit.data import scan_audio, load_audio
    for ext, fmt, sub in (('au', 'AU', 'PCM_16'), ('caf', 'CAF', 'PCM_16'), ('aifc', 'AIFF', 'PCM_16'),
                          ('oga', 'OGG', 'VORBIS'), ('wave', 'WAV', 'PCM_16')):
        sf.write(tmp_path / f'x.{ext}', _tone(), 16000, format=fmt, subtype=sub)
    sf.write(tmp_path / 'gsm.wav', _tone(8000), 8000, format='WAV', subtype='GSM610')
    (tmp_path / 'song.m4a').write_bytes(b'\0' * 100)
    found, bad = scan_audio(tmp_path)
    assert sorted(p.name for p in found) == ['gsm.wav', 'x.aifc', 'x.au', 'x.caf', 'x.oga', 'x.wave']
    assert bad == [(str(tmp_path / 'song.m4a'), 'a .m4a recording cannot be read; convert it to WAV or FLAC')]
    assert abs(len(load_audio(tmp_path / "gsm.wav")) - 16000) < 1000          # GSM 6.10 decodes (was refused)


@pytest.mark.parametrize('name', ['録音\u30001.wav', 'at 10.00\u202fAM.wav', 'a\u00a0b.wav'])
def test_names_with_the_spaces_of_other_scripts_are_read(tmp_path, name):
    from ser_kit.data import scan_audio
    sf.write(tmp_path / name, _tone(), 16000)
    assert [p.name for p in scan_audio(tmp_path)[0]] == [name]


def test_one_number_written_two_ways_is_one_speaker(data, tmp_path):
    from ser_kit.data import load_corpus
    m = pd.read_csv(data[1], dtype=str)
    m['speaker'] = ['1' if (s == '01' and i % 2) else s for i, s in enumerate(m.speaker)]   # a spreadsheet's work
    m.to_csv(tmp_path / 'm.csv', index=False)
    with pytest.warns(UserWarning, match='01 = 1'): got = load_corpus(tmp_path / 'm.csv')
    assert sorted(set(got.speaker)) == ['01', '02', '03']


def test_a_speaker_called_na_or_none_is_a_person(data, tmp_path):
    from ser_kit.data import load_corpus
    m = pd.read_csv(data[1], dtype=str)
    m['speaker'] = m.speaker.map({'01': 'NA', '02': 'None', '03': 'JB'})
    m.to_csv(tmp_path / 'm.csv', index=False)
    assert sorted(set(load_corpus(tmp_path / 'm.csv').speaker)) == ['JB', 'NA', 'None']


def test_training_on_nothing_readable_names_the_source(tmp_path):
    (tmp_path / 'c').mkdir(); (tmp_path / 'c' / 'x.wav').write_text('not audio')
    pd.DataFrame(dict(path=[str(tmp_path / 'c' / 'x.wav')] * 1, speaker=['a'], emotion=['angry'])).to_csv(
        tmp_path / 'm.csv', index=False)
    r = run('train', tmp_path / 'm.csv', '-o', tmp_path / 'o.skops')
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(f"ser-kit: error: {tmp_path / 'm.csv'}: ")


@pytest.mark.parametrize('args,says', [(('evaluate', '.', '--protocol', 'bogus'), "invalid choice: 'bogus'"),
                                       (('evaluate', '.', '--folds', '2.5'), "invalid int value: '2.5'"),
                                       (('train', '.'), 'the following arguments are required: -o/--output')])
def test_a_command_line_mistake_is_one_line(args, says):
    r = run(*args)
    assert r.returncode == 2 and r.stderr.strip().count('\n') == 0, r.stderr
    assert r.stderr.startswith('ser-kit: error: ') and says in r.stderr and '--help' in r.stderr


def test_a_damaged_cache_entry_is_recomputed_not_used(tmp_path, monkeypatch):
    from pathlib import Path
    from ser_kit.features import extract_features, extract_frames
    monkeypatch.setenv('SER_KIT_CACHE', str(tmp_path / 'cache'))
    for i in range(3): sf.write(tmp_path / f'{i}.wav', _tone() * (1 + i) / 4, 16000)
    files = [str(tmp_path / f'{i}.wav') for i in range(3)]
    X, F = extract_features(files, 'default', n_jobs=1, progress=False), extract_frames(files, n_jobs=1)[0]
    for kind, width in (('features', (5,)), ('frames', (1, 3, 7))):
        for f in (tmp_path / 'cache' / kind).glob('*.npy'):            # the right rows, a wrong shape
            np.save(f, np.zeros((len(np.load(f)),) + width, np.float32))
    np.testing.assert_array_equal(extract_features(files, 'default', n_jobs=1, progress=False).to_numpy(), X.to_numpy())
    np.testing.assert_array_equal(extract_frames(files, n_jobs=1)[0], F)


def test_a_save_stopped_between_its_two_renames_keeps_the_old_model(tmp_path, monkeypatch):
    import os
    from ser_kit import models
    dest = tmp_path / 'm'
    with models.atomic_folder(dest) as t: (t / 'ser_kit.json').write_text('{"model_type": "cnn", "v": 1}')
    real, calls = os.replace, []
    def replace(a, b):
        calls.append(b); real(a, b)
        if len(calls) == 1: raise KeyboardInterrupt             # Ctrl-C right after the old model moved aside
    monkeypatch.setattr(models.os, 'replace', replace)
    with pytest.raises(KeyboardInterrupt):
        with models.atomic_folder(dest) as t: (t / 'ser_kit.json').write_text('{"model_type": "cnn", "v": 2}')
    monkeypatch.undo()
    assert (dest / 'ser_kit.json').read_text() == '{"model_type": "cnn", "v": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m']
