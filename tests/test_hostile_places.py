"Output places a careless or hostile user can name: a folder is replaced only when it is ser_kit's through and through."

import json, shutil
from pathlib import Path
import pytest
from test_hostile_cli import run, last_error, tree_hash, CLIP, demo2, corpus, model   # noqa: F401 (fixtures)


def test_a_stray_ser_kit_json_does_not_make_a_folder_of_audio_replaceable(corpus, tmp_path):
    d, m = corpus
    mine = tmp_path / 'mine'
    shutil.copytree(d / 'Actor_01', mine)
    (mine / 'ser_kit.json').write_text('{}')
    before = tree_hash(mine)
    last_error(run('train', m, '--model', 'dimensions', '-o', mine, '-j', '1'), 'never replaces a folder of recordings')
    assert tree_hash(mine) == before


def test_a_model_folder_never_replaces_its_own_training_data(corpus, tmp_path):
    d, m = corpus
    proj = tmp_path / 'proj'
    shutil.copytree(d, proj / 'data')
    (proj / 'ser_kit.json').write_text('{}')
    before = tree_hash(proj)
    last_error(run('train', proj / 'data', '--model', 'dimensions', '-o', proj, '-j', '1'), 'an input of this command')
    assert tree_hash(proj) == before


def test_a_folder_with_someone_elses_report_html_is_not_a_report(corpus, tmp_path):
    d, m = corpus
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'report.html').write_text('<html>my page</html>')
    (site / 'metrics.json').write_text('hi')
    before = tree_hash(site)
    last_error(run('evaluate', m, '--adapt', 'none', '--speeds', 'none', '-j', '1', '--out', site), 'not a ser_kit report')
    assert tree_hash(site) == before


def test_no_new_folder_inside_a_folder_of_recordings(corpus, model, tmp_path):
    d, m = corpus
    before = tree_hash(d)
    last_error(run('predict', model, d / 'Actor_02', '--csv', d / 'Actor_01' / 'new' / 'p.csv'), 'holds audio')
    last_error(run('demo-corpus', d / 'Actor_01' / 'demo', '--actors', '1'), 'holds audio')
    assert tree_hash(d) == before


def test_a_broken_link_as_output_is_refused(corpus, model, tmp_path):
    d, m = corpus
    link = tmp_path / 'p.csv'
    link.symlink_to(tmp_path / 'elsewhere' / 'p.csv')
    last_error(run('predict', model, d / 'Actor_01' / CLIP, '--csv', link), 'broken symbolic link')
    assert link.is_symlink()


def _tampered(model: Path, dest: Path, **changes) -> Path:
    "A copy of a classical model file with its adaptation state edited (through skops, as an editor of the file would)."
    from ser_kit.classical import import_skops

    sio = import_skops()
    obj = sio.load(model, trusted=sio.get_untrusted_types(file=model))
    meta = json.loads(obj['meta'])
    meta['adaptation'].update(changes)
    sio.dump(dict(obj, meta=json.dumps(meta)), dest)
    return dest


@pytest.fixture(scope='module')
def adaptive_model(demo2, tmp_path_factory):
    p = tmp_path_factory.mktemp('adaptive') / 'm.skops'
    r = run('train', demo2, '-o', p, '--estimator', 'logreg', '--speeds', 'none', '-j', '1')
    assert r.returncode == 0, r.stderr
    return p


@pytest.mark.parametrize('changes, says', [(dict(iters=10**8), 'from 1 to 100'), (dict(iters=1.5), 'whole number'),
                                           (dict(sd_=[0.0]), 'do not fit'), (dict(classes_=['a', 'b']), 'do not fit')])
def test_an_edited_adaptation_state_fails_at_load_with_the_file_named(adaptive_model, demo2, tmp_path, changes, says):
    bad = _tampered(adaptive_model, tmp_path / 'bad.skops', **changes)
    last_error(run('predict', bad, Path(demo2) / 'Actor_01'), 'bad.skops', 'unreadable adaptation state', says)


def test_a_bad_list_among_other_inputs_is_skipped_and_a_plain_list_is_enough(corpus, model, tmp_path):
    d, m = corpus
    (tmp_path / 'empty.csv').write_text('')
    (tmp_path / 'list.csv').write_text(f'path\n{d / "Actor_01" / CLIP}\n')
    other = sorted((d / 'Actor_02').glob('*.wav'))[0]
    r = run('predict', model, other, tmp_path / 'empty.csv', tmp_path / 'list.csv')
    assert r.returncode == 0, r.stderr
    assert 'empty.csv' in r.stderr and r.stdout.count('.wav') == 2
    r = run('predict', model, d / 'Actor_01' / CLIP, d / 'Actor_01' / CLIP)
    assert r.returncode == 0 and r.stdout.count('.wav') == 1, r.stdout   # one clip, counted once for its speaker
