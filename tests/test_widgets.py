"The lesson widgets (clip explorer, mistakes browser) and figures: shown once, in the corpus' order, nothing cut off."
import numpy as np, pandas as pd
import pytest
import ser_kit.data

pytest.importorskip('ipywidgets')


@pytest.fixture
def live(monkeypatch):
    "A live notebook front-end, and every `display` call counted."
    import IPython.display
    shown = []
    monkeypatch.setattr(ser_kit.data, 'interactive_frontend', lambda: True)
    def counting(*objs, **kw):
        shown.extend(objs)
    monkeypatch.setattr(IPython.display, 'display', counting)
    return shown


def _preds(paths, labels=('neutral', 'calm', 'surprised')):
    "A predictions table: every clip of speaker s true `calm`, heard as `neutral`, from three speakers."
    spk = ['01'] * 4 + ['02'] * 2 + ['03'] * 1
    d = pd.DataFrame(dict(path=paths[:len(spk)], speaker=spk, emotion='calm', prediction='neutral', fold=0))
    for l in labels: d[f'p_{l}'] = 1 / len(labels)
    return d


def test_mistakes_browser_is_returned_not_displayed(live, demo):
    "The widget is the cell's value: displaying it as well showed two linked copies (10 players for 5 clips)."
    import ipywidgets as W
    from ser_kit.evaluation import mistakes_browser
    labels = ['neutral', 'calm', 'surprised']
    ui = mistakes_browser(_preds(list(demo.path)), labels)
    assert isinstance(ui, W.VBox)
    assert not any(isinstance(o, W.Widget) for o in live)          # nothing displayed by the function itself


def test_mistakes_browser_header_names_every_emotion_in_full(live, demo):
    from ser_kit.evaluation import mistakes_browser
    labels = ['neutral', 'calm', 'surprised']
    ui = mistakes_browser(_preds(list(demo.path)), labels)
    head = ui.children[0].children[1:]
    assert [w.value for w in head] == labels                         # 'surprised', not 'surpris'
    px = int(head[0].layout.width.rstrip('px'))
    assert px >= 9 * len('surprised')                                # wide enough for the longest name
    button = ui.children[2].children[1]
    assert button.layout.width == head[0].layout.width               # the columns line up


def test_mistakes_browser_lists_clips_over_speakers(live, demo):
    "A cell's clips come round-robin over its speakers, not all from the first speaker."
    from ser_kit.evaluation import cell_clips, mistakes_browser
    p = _preds(list(demo.path))
    got = cell_clips(p, 'calm', 'neutral', 5)
    assert list(got.speaker) == ['01', '02', '03', '01', '02']
    assert list(cell_clips(p, 'calm', 'neutral').path) == list(cell_clips(p.sample(frac=1, random_state=1)
                                                                         .sort_index(), 'calm', 'neutral').path)
    assert len(cell_clips(p, 'neutral', 'calm')) == 0
    ui = mistakes_browser(p, ['neutral', 'calm'], per_cell=3)
    ui.children[2].children[1].click()                                # true calm, predicted neutral
    audio = [o for o in live if type(o).__name__ == 'Audio']
    assert len(audio) == 3                                            # one player per listed clip, once each


def test_mistakes_browser_static_spreads_speakers(demo, capsys, monkeypatch):
    "Without a front-end the tables of the top confusions list clips of several speakers too."
    import IPython.display
    shown = []
    monkeypatch.setattr(IPython.display, 'display', lambda *o, **k: shown.extend(o))
    from ser_kit.evaluation import mistakes_browser
    mistakes_browser(_preds(list(demo.path)), ['neutral', 'calm'], static=True, per_cell=3)
    tables = [o for o in shown if isinstance(o, pd.DataFrame)]
    assert list(tables[0].speaker) == ['01', '02', '03']


def test_clip_explorer_opens_on_neutral_in_corpus_order(live, demo):
    import ipywidgets as W
    from ser_kit.data import EMOTIONS
    from ser_kit.features import clip_explorer
    import matplotlib; matplotlib.use('Agg')
    ui = clip_explorer(demo)
    assert isinstance(ui, W.VBox)
    assert not any(isinstance(o, W.Widget) for o in live)           # returned, not displayed
    spk, st, emo = ui.children[0].children
    assert emo.value == 'neutral'
    assert list(emo.options) == [e for e in EMOTIONS if e in set(demo.emotion)]


def test_clip_explorer_static_shows_a_neutral_clip(demo, monkeypatch):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from ser_kit.features import clip_explorer
    monkeypatch.setattr(ser_kit.data, 'interactive_frontend', lambda: False)
    plt.close('all')
    assert clip_explorer(demo.sort_values('emotion')) is None          # 'angry' first alphabetically: still neutral
    titles = [t.get_text() for f in map(plt.figure, plt.get_fignums()) for t in f.texts]
    titles += [a.get_title() for f in map(plt.figure, plt.get_fignums()) for a in f.axes]
    assert any(t.startswith('neutral') for t in titles), titles
    plt.close('all')


def test_radar_legend_covers_no_emotion_label():
    "The legend sits outside the polar axes: it overlaps none of the emotion names (it hid 'surprised')."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from ser_kit.data import EMOTIONS
    from ser_kit.evaluation import plot_radar
    em = [e for e in EMOTIONS if e != 'boredom']
    fig = plot_radar({m: {e: 0.5 for e in em} for m in ('classical', 'cnn', 'wav2vec2 (tiny, offline)', 'fusion')})
    fig.canvas.draw(); r = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = (fig.legends or [ax.get_legend()])[0].get_window_extent(r)
    ticks = [t for t in ax.get_xticklabels() if t.get_text()]
    assert [t.get_text() for t in ticks] == em
    for t in ticks: assert not legend.overlaps(t.get_window_extent(r)), t.get_text()
    assert not legend.overlaps(ax.get_window_extent(r))
    plt.close(fig)
