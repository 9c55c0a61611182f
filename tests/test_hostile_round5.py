"""Hostile input, fifth round: integer sample arrays, spaces around speaker ids, unknown speakers in the API, emotions
a corpus lacks, a pipe or a device as input, closed output streams, and NaN in result JSON."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from test_hostile_cli import run, last_error   # `ser-kit` in this process, the one-line error
from test_hostile_round4 import data, model, QUICK   # 3 speakers x 6 clips, a quick model of them


def test_integer_pcm_arrays_are_scaled_not_read_as_huge_floats(model, data):
    "scipy's wavfile gives int16: the same clip as int16 or as float must get the same prediction."
    import soundfile as sf
    from ser_kit.models import load_model
    from ser_kit.data import AudioError
    rec = load_model(model); y = sf.read(next(data[0].rglob('*.wav')), dtype='float32')[0] * 0.15
    P_float, P_int = rec.predict_proba_audio([y]), rec.predict_proba_audio([(y * 32767).astype(np.int16)])
    np.testing.assert_allclose(P_float, P_int, atol=1e-3)
    with pytest.raises(AudioError, match='absurd'):          # int16 values handed over as floats: not audio
        rec.predict_proba_audio([(y * 32767).astype(np.float32)])


def test_spaces_around_a_speaker_id_are_the_same_speaker(data, tmp_path):
    m = pd.read_csv(data[1], dtype=str); m.loc[:5, 'speaker'] = ' ' + m.loc[:5, 'speaker'] + ' '
    m.to_csv(tmp_path / 'ws.csv', index=False)
    from ser_kit.data import read_manifest
    assert sorted(set(read_manifest(tmp_path / 'ws.csv').speaker)) == ['01', '02', '03']


def test_unknown_speakers_in_the_api_are_not_pooled(model, data):
    from ser_kit.models import load_model
    files = sorted(map(str, data[0].rglob('*.wav')))[:3]
    t = load_model(model).predict_table(files, speakers=[None, float('nan'), 'x'])
    assert list(t.speaker_clips) == [1, 1, 1]


def test_evaluate_emotions_the_corpus_lacks_or_too_few(data, tmp_path):
    last_error(run('evaluate', data[0], '--emotions', 'joy,neutral', *QUICK), 'no clip of joy here')
    last_error(run('evaluate', data[0], '--emotions', 'angry', *QUICK), 'at least 2 emotions')


def test_evaluate_json_is_strict_json(data, tmp_path):
    "A fold that scored nothing has no UAR: written as null, which every JSON reader accepts (NaN is not JSON)."
    from ser_kit.data import strict_json
    assert json.loads(strict_json(dict(uar=float('nan')))) == dict(uar=None)
    r = run('evaluate', data[0], '--folds', 3, '--json', tmp_path / 'r.json', *QUICK)
    assert r.returncode == 0, r.stderr
    assert 'NaN' not in (tmp_path / 'r.json').read_text()


@pytest.mark.skipif(not hasattr(os, 'mkfifo'), reason='named pipes are POSIX')
def test_a_pipe_or_a_device_is_refused_not_read_forever(model, tmp_path):
    os.mkfifo(tmp_path / 'p.wav')
    for f in (tmp_path / 'p.wav', '/dev/zero'):
        last_error(run('predict', model, f), 'not a regular file')
    (tmp_path / 'l.csv').write_text('path\n/dev/zero\n')
    last_error(run('predict', model, tmp_path / 'l.csv'), 'not a regular file')


@pytest.mark.skipif(sys.platform == 'win32', reason='closing descriptors in a shell')
@pytest.mark.parametrize('closed', ['>&-', '2>&-', '>&- 2>&-'])
def test_closed_output_streams_do_not_lose_the_work(model, data, tmp_path, closed):
    "`ser-kit predict ... >&-`: the CSV is still written, exit 0 (a fresh process: descriptors are per process)."
    out = tmp_path / 'p.csv'
    cmd = f'"{sys.executable}" -m ser_kit.cli predict "{model}" "{data[0]}" --csv "{out}" {closed}'
    r = subprocess.run(cmd, shell=True, env=dict(os.environ, SER_KIT_CACHE=str(tmp_path / 'cache')), timeout=300)
    assert r.returncode == 0 and len(pd.read_csv(out)) == 18
