"""Which input normalisation for the CNN on unseen speakers? A screening run: one resnet1d network per fold, 30 epochs.

Variants (the front end is patched in this script; the library's `Frontend(norm='level')` is the `spk_lvl` variant):
  cmn      each clip's band means removed (the library's default `norm='cmn'`)
  spk      each speaker's band means (over active frames) removed from all of that speaker's clips, then / 10
  spk_lvl  as spk, then each clip's overall level removed (`CNNRecognizer(adapt='speaker')`)
RAVDESS actors 01-16, folds of four (test 01-04, ...), the two actors after the test block validate (best epoch kept).
Usage: python benchmarks/cnn_speaker_input.py VARIANT F0,F1,F2,F3 EPOCHS [NETWORKS]   (from the repository root)
Results of the run quoted in lesson 03: results/cnn_speaker_input_ravdess.json.
"""
import sys, json, time, os, warnings; warnings.filterwarnings('ignore')
import numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(int(os.environ.get('THREADS', 1)))
from ser_kit.data import load_corpus
from ser_kit import cnn
from ser_kit.cnn import cached_frames, build_model, FrameDataset, train_model, predict_logits, crop_frames, CNNSettings
from ser_kit.models import uar

variant = sys.argv[1]; protos = sys.argv[2].split(','); epochs = int(sys.argv[3]); nnets = int(sys.argv[4]) if len(sys.argv) > 4 else 1
orig_forward = cnn.Frontend.forward
def fwd(self, x):
    if variant == 'cmn': return orig_forward(self, x)
    x = torch.maximum(x, x.amax(dim=(2, 3), keepdim=True) - self.top_db)
    if variant == 'spk_lvl': x = x - x.mean(dim=(2, 3), keepdim=True)     # utterance level off, spectral shape kept
    x = x / 10
    if self.deltas:
        d = self.delta(x); x = torch.cat([x, d, self.delta(d)], dim=1)
    return F.avg_pool2d(x, (1, self.time_pool)) if self.time_pool > 1 else x
cnn.Frontend.forward = fwd

df = load_corpus(os.path.join(os.environ.get('SER_KIT_DATA', '../shared/data'), 'ravdess-dev')).reset_index(drop=True)
X, idx = cached_frames(df, n_jobs=1); df = df.loc[idx].reset_index(drop=True)
labels = sorted(df.emotion.unique()); y = df.emotion.map({e: i for i, e in enumerate(labels)}).to_numpy()
spk = df.speaker.astype(str).to_numpy()

def clip_means(X, floor=50.0):
    "Per-clip band means over active frames (frame energy within `floor` dB of the clip's loudest frame)."
    e = X[:, 0].mean(1)                                  # [N, T] frame mean dB
    act = e >= e.max(1, keepdims=True) - floor
    return np.stack([X[i, 0][:, act[i]].mean(1) for i in range(len(X))])   # [N, F]

M = clip_means(X)
Xn = X.copy()
if variant.startswith('spk'):
    for s in np.unique(spk):
        m = spk == s; Xn[m] -= M[m].mean(0)[None, None, :, None]
act = df.speaker.astype(int)
P = {'A': (act <= 12, act.isin([13, 14]), act >= 15), 'B': (act >= 5, act.isin([3, 4]), act <= 2)}
for f in range(4):
    te = act.isin(range(4*f+1, 4*f+5)); va = act.isin([(4*f+4) % 16 + 1, (4*f+5) % 16 + 1])
    P[f'F{f}'] = (~te & ~va, va, te)
res = {}
for p in protos:
    tr, va, te = [np.asarray(v) for v in P[p]]
    crop = 300
    val = (crop_frames(Xn[va], crop), y[va])
    probs = []
    t0 = time.time()
    for k in range(nnets):
        net = build_model('resnet1d', len(labels), 64)
        h = train_model(net, FrameDataset(Xn[tr], y[tr], crop, train=True, seed=k), val, CNNSettings(epochs=epochs, patience=epochs), seed=k, device='cpu')
        lg = predict_logits(net, crop_frames(Xn[te], crop)); probs.append(torch.softmax(torch.from_numpy(lg), 1).numpy())
        print(p, variant, k, 'net uar', round(uar(y[te], probs[-1].argmax(1)), 3), 'best val', round(h.val_uar.max(), 3), flush=True)
    pr = np.mean(probs, 0); pass
    res[p] = round(uar(y[te], pr.argmax(1)), 3)
    print(p, variant, 'ensemble uar', res[p], 'min', round((time.time() - t0) / 60, 1), flush=True)
print(json.dumps(dict(variant=variant, epochs=epochs, nnets=nnets, res=res, mean=round(float(np.mean(list(res.values()))), 3))))
