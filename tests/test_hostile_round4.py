"""Hostile input, fourth round: an empty output name, more folds than speakers, a class a fold never saw, SVC with too
few clips of an emotion, no microphone, and an output inside a model folder each get one clear line."""
import json
from pathlib import Path
import pandas as pd, pytest
from test_hostile_cli import run, last_error, demo2   # `ser-kit` in this process, the one-line error, a 2-actor demo
from test_hostile_outputs import _clips        # RAVDESS-named voiced clips, quick to make


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "Three speakers, six clips each (neutral and angry), and its manifest."
    root = tmp_path_factory.mktemp('h4')
    d = _clips(root / 'data', n=6, speakers=('01', '02', '03'))
    r = run('corpus', d, '--csv', root / 'm.csv', '-j', '1')
    assert r.returncode == 0, r.stderr
    return d, root / 'm.csv'


QUICK = ('--estimator', 'logreg', '--adapt', 'none', '--speeds', 'none', '-j', '1')


@pytest.mark.parametrize('cmd', [('corpus', '{d}', '--csv'), ('evaluate', '{d}', '--json'), ('train', '{d}', '-o'),
                                 ('features', '{d}', '--out'), ('demo-corpus',)])
def test_an_empty_output_name_is_refused(data, cmd):
    "An unset shell variable (`--csv \"$OUT\"`) must not read as 'no output' and end with exit 0 having written nothing."
    r = run(*[c.format(d=data[0]) for c in cmd], '')
    assert r.returncode == 2 and 'empty name' in r.stderr and 'Traceback' not in r.stderr, r


def test_more_folds_than_speakers_says_how_many_ran(data, tmp_path):
    r = run('evaluate', data[0], '--folds', 5, '--json', tmp_path / 'r.json', *QUICK)
    assert r.returncode == 0, r.stderr
    assert '5 folds asked, but only 3 speakers: 3 folds' in r.stderr
    assert json.loads((tmp_path / 'r.json').read_text())['folds'] == 3


def test_the_folds_warning_is_said_once_when_evaluate_runs_twice(data):
    "Adapted and unadapted runs share their folds: the warning about them is printed once, not once a run."
    r = run('evaluate', data[0], '--folds', 5, '--estimator', 'logreg', '--speeds', 'none', '-j', '1')
    assert r.returncode == 0, r.stderr
    assert 'adapted and unadapted' in r.stdout and r.stderr.count('5 folds asked') == 1, r.stderr


def test_a_class_missing_from_a_folds_training_is_explained(data, tmp_path):
    "Angry clips of one speaker only: the fold testing that speaker cannot train (one emotion left); it is said, not fatal."
    m = pd.read_csv(data[1], dtype=str)
    m = m[(m.emotion != 'angry') | (m.speaker == '01')]
    m.to_csv(tmp_path / 'one.csv', index=False)
    r = run('evaluate', tmp_path / 'one.csv', '--folds', 3, '--out', tmp_path / 'report', *QUICK)
    assert r.returncode == 0, r.stderr
    assert "note: fold 2: not run: its training speakers hold only ['neutral']" in r.stdout, r.stdout
    assert r.stdout.startswith('speaker protocol, 2 folds')                 # the folds that ran
    assert 'not run: its training speakers hold only' in (tmp_path / 'report' / 'report.md').read_text()
    m = m[m.speaker != '01']                                   # one emotion left in the corpus: said before any fold
    m.to_csv(tmp_path / 'none.csv', index=False)
    last_error(run('evaluate', tmp_path / 'none.csv', '--folds', 2, *QUICK), "only ['neutral']", 'at least 2 emotions')


def test_svc_with_too_few_clips_of_an_emotion_names_it(data, tmp_path):
    m = pd.read_csv(data[1], dtype=str)
    m = pd.concat([m[m.emotion != 'angry'], m[m.emotion == 'angry'].head(2)])
    m.to_csv(tmp_path / 'few.csv', index=False)
    r = run('train', tmp_path / 'few.csv', '-o', tmp_path / 'svc.skops', '--estimator', 'svc', '--adapt', 'none',
            '--speeds', 'none', '-j', '1')
    last_error(r, "'angry' has 2", 'svc')
    assert not (tmp_path / 'svc.skops').exists()


def test_no_microphone_is_one_error_line(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'sounddevice', None)
    r = run('listen', '--model', 'never-loaded.skops')
    last_error(r, 'no microphone found (')
    assert r.stdout == ''


def test_nothing_is_written_into_a_model_folder(data, tmp_path):
    "A file inside a model folder would make it a folder of someone's things, which the next `train -o` refuses."
    folder = tmp_path / 'model'
    (folder).mkdir(); (folder / 'ser_kit.json').write_text(json.dumps(dict(model_type='cnn', files={})))
    m = tmp_path / 'm.skops'
    assert run('train', data[0], '-o', m, *QUICK).returncode == 0
    r = run('predict', m, data[0], '--csv', folder / 'p.csv')
    last_error(r, 'inside the ser_kit model folder')
    r = run('evaluate', data[0], '--folds', 3, '--out', folder / 'report', *QUICK)
    last_error(r, 'inside the ser_kit model folder')
    assert sorted(p.name for p in folder.iterdir()) == ['ser_kit.json']


# ---- from the fourth hostile round ---------------------------------------------------------------------------------
@pytest.mark.parametrize('cmd', [('corpus',), ('train', '-o', '{t}/m.skops'), ('evaluate',)])
def test_an_empty_input_name_is_not_the_current_folder(data, tmp_path, cmd):
    r = run(*[c.format(t=tmp_path) for c in cmd], '')
    assert r.returncode == 2 and 'empty name' in r.stderr and 'Traceback' not in r.stderr, r
    assert not (tmp_path / 'm.skops').exists()


@pytest.fixture(scope='module')
def model(data, tmp_path_factory):
    m = tmp_path_factory.mktemp('h4m') / 'm.skops'
    assert run('train', data[0], '-o', m, *QUICK).returncode == 0
    return m


def test_predict_with_an_empty_input_is_refused(model):
    assert 'empty name' in run('predict', model, '').stderr


def test_recordings_ser_kit_cannot_read_are_still_protected(data, tmp_path):
    mine = tmp_path / 'phone'; mine.mkdir(); (mine / 'call.m4a').write_bytes(b'\x00\x00\x00\x20ftypM4A ')
    last_error(run('train', data[0], '-o', mine / 'm.skops', *QUICK), 'holds audio')
    assert sorted(p.name for p in mine.iterdir()) == ['call.m4a']


def test_an_earlier_search_folder_that_now_holds_audio_is_not_written_into(data, tmp_path):
    out = tmp_path / 'search'
    assert run('search', data[0], '--estimators', 'logreg', '--folds', 2, '--out', out, '-j', 1).returncode == 0
    (out / 'take.wav').write_bytes((next(data[0].rglob('*.wav'))).read_bytes())
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    last_error(run('search', data[0], '--estimators', 'logreg', '--folds', 2, '--out', out, '-j', 1), 'holds audio')
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_a_line_break_in_a_file_name_cannot_fake_a_line(data, model, tmp_path):
    d = tmp_path / 'nl'; d.mkdir()
    clip = next(data[0].rglob('*.wav')).read_bytes()
    (d / 'good.wav').write_bytes(clip); (d / 'bad\nser-kit: error: fake.wav').write_bytes(clip)
    r = run('predict', model, d)
    assert r.returncode == 0, r.stderr
    assert not any(l.startswith('ser-kit: error: fake') for l in r.stderr.splitlines()), r.stderr
    assert 'bad\\nser-kit' in r.stderr and 'control character' in r.stderr
    assert len(r.stdout.strip().splitlines()) == 1 and 'good.wav' in r.stdout


def test_two_rec_folders_are_two_speakers(data, model, tmp_path):
    clips = sorted(data[0].rglob('*.wav'))
    for who, src in (('alice', clips[:3]), ('bob', clips[-3:])):
        (tmp_path / who / 'rec').mkdir(parents=True)
        for i, c in enumerate(src): (tmp_path / who / 'rec' / f'take{i}.wav').write_bytes(c.read_bytes())
    r = run('predict', model, tmp_path / 'alice' / 'rec', tmp_path / 'bob' / 'rec', '--csv', tmp_path / 'p.csv')
    assert r.returncode == 0, r.stderr
    p = pd.read_csv(tmp_path / 'p.csv')
    assert sorted(set(p.speaker)) == ['alice/rec', 'bob/rec'] and set(p.speaker_clips) == {3}


def test_an_edited_model_description_is_refused(demo2, data, tmp_path):
    out = tmp_path / 'dims'
    assert run('train', demo2, '--task', 'dimensions', '-o', out, '-j', 1).returncode == 0
    d = json.loads((out / 'ser_kit.json').read_text()); assert d['description_sha256']
    (out / 'ser_kit.json').write_text(json.dumps(d | dict(labels=list(reversed(d['labels'])))))
    last_error(run('predict', out, data[0]), 'ser_kit.json', 'edited or corrupted')
    (out / 'ser_kit.json').write_text(json.dumps(d | dict(model_type=['cnn'])))
    last_error(run('predict', out, data[0]), 'ser_kit.json', 'unknown model type')


def test_decoded_clips_are_checked_like_files(model):
    import numpy as np
    from ser_kit.models import load_model
    from ser_kit.data import AudioError
    rec = load_model(model); tone = (0.1 * np.sin(np.arange(16000) / 8)).astype('f4')
    assert rec.predict_proba_audio([tone]).shape == (1, len(rec.labels))
    for bad, msg in ((np.full(16000, np.nan, 'f4'), 'NaN'), (np.zeros(16000, 'f4'), 'silent'),
                     (np.zeros(0, 'f4'), 'no audio samples'), (np.stack([tone, tone], 1), 'mono')):
        with pytest.raises(AudioError, match=msg): rec.predict_proba_audio([tone, bad])


def test_the_api_save_checks_its_output_like_the_cli(model, data, tmp_path):
    from ser_kit.models import load_model
    from ser_kit.data import OutputPathError
    rec = load_model(model)
    (tmp_path / 'notes.skops').write_text('my notes')
    for bad, msg in ((tmp_path / 'notes.skops', 'not a ser_kit model'), (tmp_path / 'm.txt', 'must end in .skops'),
                     (next(data[0].rglob('*.wav')).parent / 'm.skops', 'holds audio')):
        with pytest.raises(OutputPathError, match=msg): rec.save(bad)
    assert (tmp_path / 'notes.skops').read_text() == 'my notes' and not (tmp_path / 'm.txt').exists()


def test_options_read_as_a_user_means_them(data, tmp_path):
    r = run('train', data[0], '-o', tmp_path / 'z.skops', '--adapt', 'Z', '--speeds', 'none', '-j', 1)
    assert r.returncode == 0, r.stderr
    r = run('train', data[0], '-o', tmp_path / 'c', '--model', 'cnn', '--lr', 'inf')
    assert r.returncode == 2 and 'finite number above 0' in r.stderr


def test_a_bad_mp3_is_one_line_with_a_true_reason(model, tmp_path, capfd):
    f = tmp_path / 'x.mp3'; f.write_bytes(b'ID3' + b'\0' * 100)
    r = run('predict', model, f)
    line = last_error(r, 'x.mp3', 'not decodable audio')
    assert 'does not exist' not in line
    assert capfd.readouterr().err == ''                      # nothing from the C decoder on the process' stderr


def test_saved_model_folders_and_demo_corpora_read_as_any_new_file(demo2, tmp_path):
    import os, stat
    from ser_kit.data import make_demo_corpus
    mask = os.umask(0o022)
    try:
        out = tmp_path / 'dims'
        assert run('train', demo2, '--task', 'dimensions', '-o', out, '-j', 1).returncode == 0
        d = make_demo_corpus(tmp_path / 'demo', n_actors=1, n_jobs=1)
    finally: os.umask(mask)
    for p in [out, *out.rglob('*'), d]:
        assert stat.S_IMODE(p.stat().st_mode) == (0o755 if p.is_dir() else 0o644), p


def test_a_folder_holding_a_classical_description_says_what_a_classical_model_is(tmp_path):
    (tmp_path / 'cls').mkdir(); (tmp_path / 'cls' / 'ser_kit.json').write_text('{"model_type": "classical"}')
    last_error(run('predict', tmp_path / 'cls', tmp_path), 'one .skops file')


def test_equal_clip_counts_read_as_one_number():
    from ser_kit.evaluation import adaptation_note
    assert adaptation_note(dict(adaptation='em', clips_per_speaker=dict(min=16, max=16))) == 'em, 16 clips per speaker'
    assert adaptation_note(dict(adaptation='em', clips_per_speaker=dict(min=2, max=16))) == 'em, 2-16 clips per speaker'


def test_a_failed_command_leaves_no_empty_folders_made_for_its_output(data, tmp_path):
    m = pd.read_csv(data[1], dtype=str)
    pd.concat([m[m.emotion != 'angry'], m[m.emotion == 'angry'].head(2)]).to_csv(tmp_path / 'few.csv', index=False)
    r = run('train', tmp_path / 'few.csv', '-o', tmp_path / 'new' / 'deeper' / 'm.skops', '--estimator', 'svc',
            '--adapt', 'none', '--speeds', 'none', '-j', '1')
    last_error(r, "'angry' has 2")
    assert not (tmp_path / 'new').exists()
    (tmp_path / 'kept').mkdir()                                     # a folder that was there before stays
    run('train', tmp_path / 'few.csv', '-o', tmp_path / 'kept' / 'm.skops', '--estimator', 'svc', '-j', '1')
    assert (tmp_path / 'kept').is_dir()


# ---- the re-test of the fourth round's fixes --------------------------------------------------------------------------
def test_removing_the_description_digest_does_not_switch_the_check_off(demo2, data, tmp_path):
    out = tmp_path / 'dims'
    assert run('train', demo2, '--task', 'dimensions', '-o', out, '-j', 1).returncode == 0
    d = json.loads((out / 'ser_kit.json').read_text()); assert d['format_version'] == 3
    d.pop('description_sha256'); (out / 'ser_kit.json').write_text(json.dumps(d | dict(labels=d['labels'][::-1])))
    last_error(run('predict', out, data[0]), 'SHA-256 of the description is gone')


def test_dot_dot_beside_a_model_folder_is_not_inside_it(model, data, tmp_path):
    folder = tmp_path / 'cnnm'; folder.mkdir()
    (folder / 'ser_kit.json').write_text(json.dumps(dict(model_type='cnn', files={})))
    r = run('predict', model, data[0], '--csv', f'{folder}/../p.csv')
    assert r.returncode == 0 and (tmp_path / 'p.csv').is_file(), r.stderr


def test_a_fold_the_model_cannot_train_on_is_a_note(data, tmp_path):
    "Two folds of three speakers: one trains on a single speaker, which speaker adaptation cannot use; it is a note."
    r = run('evaluate', data[0], '--folds', 2, '--estimator', 'logreg', '--speeds', 'none', '-j', 1)
    assert r.returncode == 0, r.stderr
    assert 'not run: speaker adaptation needs at least 2 training speakers' in r.stdout, r.stdout
    assert r.stdout.startswith('speaker protocol, 1 fold,')
    m = pd.read_csv(data[1], dtype=str); m[m.speaker != '03'].to_csv(tmp_path / 'two.csv', index=False)
    r = run('evaluate', tmp_path / 'two.csv', '--folds', 2, '--estimator', 'logreg', '--speeds', 'none', '-j', 1)
    last_error(r, 'no fold could be trained', 'at least 2 training speakers')


def test_emobox_folds_only_for_ravdess(data, tmp_path):
    "Speakers numbered 01, 02, 03 in another corpus (EMO-DB's are 03-16) are not RAVDESS actors."
    import shutil
    m = pd.read_csv(data[1], dtype=str); m['corpus'] = 'emodb'
    for i, f in enumerate(m.path):
        shutil.copy(f, tmp_path / f'take{i}.wav'); m.loc[i, 'path'] = str(tmp_path / f'take{i}.wav')
    m.to_csv(tmp_path / 'e.csv', index=False)
    last_error(run('evaluate', tmp_path / 'e.csv', '--protocol', 'emobox', *QUICK), 'RAVDESS actors', 'emodb')


def test_control_characters_in_arguments_are_escaped(model, data, tmp_path):
    import shutil
    odd = tmp_path / 'ctl\x1b[2Jdir'; shutil.copytree(next(data[0].iterdir()), odd)
    r = run('predict', model, odd)
    assert r.returncode == 0 and '\x1b' not in r.stdout and '\\x1b[2Jdir' in r.stdout, r
    r = run('predict', tmp_path / 'no\x1bmodel.skops', odd)
    assert '\x1b' not in r.stderr and 'no\\x1bmodel' in last_error(r)


def test_search_without_folds_uses_what_the_speakers_allow(data, tmp_path):
    r = run('search', data[0], '--estimators', 'logreg', '--out', tmp_path / 's', '-j', 1)   # 3 speakers, default 4
    assert r.returncode == 0, r.stderr
    last_error(run('search', data[0], '--estimators', 'logreg', '--folds', 4, '--out', tmp_path / 't', '-j', 1),
               'too few for 4')


def test_a_silent_utterance_is_named_so_not_by_a_temporary_file(model):
    import numpy as np
    from ser_kit.listen import predict_audio
    from ser_kit.models import load_model
    from ser_kit.data import SilentAudioError
    with pytest.raises(SilentAudioError, match=r'^utterance: all silent'): predict_audio(load_model(model), np.zeros(16000))
