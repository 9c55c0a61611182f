"""Speaker batch norm: the default CNN study (`cnn_speed_speakers.py`), every batch-norm layer normalising per speaker.

The default CNN normalises each speaker only after the networks (its classifier reads every layer's statistics, z-scored
with the speaker's own clips). This study moves that inside the networks, as in AdaBN: every training batch holds the
clips of one speaker (a real actor, or one of its speed copies), so each batch-norm layer learns on features normalised
with that speaker's own statistics; at prediction, a speaker's clips (unlabelled, grouped as the default CNN does)
pass through together and every batch-norm layer uses their statistics, shrunk toward the training average by `--prior`
pseudo-clips (a clip alone: its own statistics, mostly the training average). Labels are never read at prediction.

With `--correct`, a test speaker's mix of emotions is taken out of every layer's mean, as the E-step of `adapt='em'`
takes it out of the vectors: after training, every batch-norm layer keeps each emotion's mean input minus the training
speaker's balanced mean (`delta_`, averaged over the training speakers); at prediction the networks' softmax gives
each speaker's emotion shares (hedged half-way toward "every emotion equally often", `--iters` E-steps), and each
layer's mean is the speaker's mean minus the shares times those offsets.

It patches `ser_kit.cnn` for the run only (training batches, validation, the vectors, prediction) and then runs
`cnn_speed_speakers.main()` with its arguments: the rows and the JSON file are those of that script.

    python benchmarks/cnn_speaker_bn.py --models 3 --fusion --out benchmarks/results/cnn_speed_speakers_..._spkbn.json
        [--prior 8] [--batch 32] [--correct [--hedge 0.5] [--iters 2]]
"""
import argparse, sys, time, copy
from collections import deque
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, str(Path(__file__).parent))
import ser_kit.cnn as C
from ser_kit.models import uar

CTX = dict(prior=8.0, batch=32, correct=False, hedge=0.5, iters=2, pi=None)   # settings of the study (and its state)
BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def _bn_forward(m, n_clips):
    "A batch-norm forward pass with this batch's statistics, shrunk toward the running ones by the prior."
    w = n_clips / (n_clips + CTX['prior'])
    def fwd(x):
        dims = [0] + list(range(2, x.dim()))
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        if CTX['pi'] is not None and getattr(m, 'delta_', None) is not None:   # the speaker's emotions' share taken out
            mean = mean - torch.as_tensor(CTX['pi'], dtype=mean.dtype) @ m.delta_.to(mean.dtype)
        mean = w * mean + (1 - w) * m.running_mean
        var = w * var + (1 - w) * m.running_var
        return F.batch_norm(x, mean, var, m.weight, m.bias, False, 0.0, m.eps)
    return fwd


@contextmanager
def speaker_bn(model, n_clips):
    "Inside the block every batch-norm layer of `model` normalises with the batch's own (shrunk) statistics."
    mods = [m for m in model.modules() if isinstance(m, BN)]
    for m in mods: m.forward = _bn_forward(m, n_clips)
    try: yield model
    finally:
        for m in mods: del m.forward


def grouped(fn, X, groups, pis=None):
    "Apply `fn(X_part, n_clips)` to each speaker's rows of `X` (None: each row alone) and put the rows back in order."
    groups = np.arange(len(X)).astype(str) if groups is None else np.asarray(groups).astype(str)
    out = None
    for g in dict.fromkeys(groups):
        i = np.flatnonzero(groups == g); CTX['pi'] = None if pis is None else pis[g]
        try: r = fn(X[i], len(i))
        finally: CTX['pi'] = None
        if out is None: out = np.zeros((len(X),) + r.shape[1:], r.dtype)
        out[i] = r
    return out


def logits_by_speaker(model, X, groups, device='cpu', pis=None):
    "Logits [N, classes] with each speaker's clips through the network together (their batch-norm statistics)."
    def fn(x, n):
        with speaker_bn(model, n): return C.predict_logits(model, x, batch_size=len(x), device=device)
    return grouped(fn, np.asarray(X), groups, pis)


def vectors_by_speaker(model, X, groups, device='cpu', pis=None):
    "`network_vectors` with each speaker's clips through the network together."
    def fn(x, n):
        with speaker_bn(model, n): return C.network_vectors(model, x, batch_size=len(x), device=device)
    return grouped(fn, np.asarray(X), groups, pis)


def channel_means(x):
    "Each clip's mean of every channel [B, C] of a batch-norm layer's input."
    return x.float().mean([d for d in range(2, x.dim())]).detach().cpu()


@torch.no_grad()
def class_offsets(model, X, y, spk, n_classes, device='cpu'):
    "Each batch-norm layer's `delta_` [classes, channels]: an emotion's mean input less its speaker's balanced mean."
    mods = [m for m in model.modules() if isinstance(m, BN)]; acc = {m: [] for m in mods}
    for s in np.unique(spk):
        i = np.flatnonzero(spk == s); ys = y[i]
        if len(set(ys)) < n_classes: continue                       # a speaker without every emotion: not balanced
        seen = {m: [] for m in mods}
        hooks = [m.register_forward_pre_hook(lambda mod, inp: seen[mod].append(channel_means(inp[0]))) for m in mods]
        try:
            with speaker_bn(model, len(i)): C.predict_logits(model, X[i], batch_size=len(i), device=device)
        finally:
            for h in hooks: h.remove()
        for m in mods:
            M = torch.cat(seen[m]).numpy(); cm = np.stack([M[ys == c].mean(0) for c in range(n_classes)])
            acc[m].append(cm - cm.mean(0))
    for m in mods: m.delta_ = torch.as_tensor(np.mean(acc[m], axis=0), dtype=torch.float32) if acc[m] else None


def emotion_shares(self, flat, groups, dev):
    "Each speaker's emotions' shares, hedged: E-steps of the networks' softmax under corrected speaker batch norm."
    groups = np.arange(len(flat)).astype(str) if groups is None else np.asarray(groups).astype(str)
    pis = None
    for _ in range(CTX['iters']):
        P = np.mean([torch.softmax(torch.from_numpy(logits_by_speaker(net.to(dev), flat, groups, dev, pis)), 1).numpy()
                     for net in self.networks], axis=0)
        k = P.shape[1]
        pis = {g: (1 - CTX['hedge']) * P[groups == g].mean(0) + CTX['hedge'] / k for g in dict.fromkeys(groups)}
    return pis


def speaker_batches(spk, batch, rng):
    "Batches of row indices, each holding one speaker's clips (shuffled), in a shuffled order."
    out = []
    for s in np.unique(spk):
        i = rng.permutation(np.flatnonzero(spk == s))
        k = max(1, int(np.ceil(len(i) / batch)))
        out += [c for c in np.array_split(i, k) if len(c) > 1]
    return [out[j].tolist() for j in rng.permutation(len(out))]


class Sampler(torch.utils.data.Sampler):
    def __init__(self, spk, batch, seed): self.spk, self.batch, self.rng = spk, batch, np.random.default_rng(seed)
    def __iter__(self): return iter(speaker_batches(self.spk, self.batch, self.rng))
    def __len__(self): return len(speaker_batches(self.spk, self.batch, np.random.default_rng(0)))


def validation_scores(model, val, device):
    "As ser_kit's, with the validation speakers' clips grouped."
    logits = logits_by_speaker(model, val[0], CTX['val_spk'], device); y = np.asarray(val[1])
    loss = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y)).item()
    return dict(val_loss=float(loss), val_uar=uar(y, logits.argmax(1)))


def train_model(model, train_ds, val=None, settings=None, seed=0, device=None, progress=False, **changes):
    "`ser_kit.cnn.train_model` with one speaker a batch (the rest unchanged)."
    s = replace(settings or C.CNNSettings(), **changes); device = device or C.default_device()
    gen = C.seed_everything(seed)
    model.to(device); opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=s.t0 or max(1, s.epochs // 3), T_mult=2)
    scaler = torch.amp.GradScaler('cuda', enabled=C.amp_dtype(device) == torch.float16)
    loader = torch.utils.data.DataLoader(train_ds, batch_sampler=Sampler(CTX['train_spk'], CTX['batch'], seed),
                                         num_workers=0)
    hist, best, best_state = [], -np.inf, None
    for ep in range(s.epochs):
        t = time.time(); loss = C.train_one_epoch(model, loader, opt, sched, scaler, s, ep, gen, device)
        row = dict(epoch=ep + 1, train_loss=loss, lr=opt.param_groups[0]['lr'], seconds=time.time() - t)
        if val is not None: row |= validation_scores(model, val, device)
        hist.append(row); score = row.get('val_uar', -loss)
        if score > best: best = score; best_state = copy.deepcopy(model.state_dict())
        if progress: print(C._epoch_line(row, score == best), flush=True)
    model.load_state_dict(best_state); model.eval(); return C.history_frame(hist)


orig_arrays = C.CNNRecognizer._training_arrays
def _training_arrays(self, manifest):
    X, y, spk, voice, va = orig_arrays(self, manifest)
    CTX['train_spk'], CTX['val_spk'], CTX['all_spk'] = np.asarray(spk[~va]), np.asarray(spk[va]), np.asarray(spk)
    CTX['X'], CTX['y'] = X, np.asarray(y)
    return X, y, spk, voice, va


def _embeddings(self, X, speakers=None):
    "The vectors of every network side by side, each speaker's clips through the networks together."
    if speakers is None and len(X) == len(CTX.get('all_spk', ())) and CTX.get('fitting'): speakers = CTX['all_spk']
    flat, n, v = self._flat_views(X); dev = self.device or C.default_device()
    groups = None if speakers is None else np.repeat(np.asarray(speakers).astype(str), v)
    pis = emotion_shares(self, flat, groups, dev) if CTX['correct'] and not CTX.get('fitting') else None
    if pis is not None and groups is None: groups = np.arange(len(flat)).astype(str)
    E = np.concatenate([vectors_by_speaker(net.to(dev), flat, groups, dev, pis) for net in self.networks], 1)
    return E.reshape(n, v, -1).mean(1)


orig_fit = C.CNNRecognizer.fit
def fit(self, manifest):
    CTX['fitting'] = True
    try:
        orig_fit(self, manifest)
        if CTX['correct']:                      # the emotions' offsets of every layer, from the training speakers
            crop = self._crop(); X = C.crop_frames(CTX['X'], crop) if crop else CTX['X']
            for net in self.networks: class_offsets(net, X, CTX['y'], CTX['all_spk'], len(self.labels))
            d = [m.delta_ for net in self.networks for m in net.modules() if isinstance(m, BN)]
            print(f"class offsets: {sum(x is not None for x in d)} of {len(d)} batch-norm layers, mean |delta| "
                  f"{np.mean([float(x.abs().mean()) for x in d if x is not None]):.3f}", file=sys.stderr, flush=True)
        return self
    finally: CTX['fitting'] = False


@torch.no_grad()
def predict_frames(self, X, speakers=None):
    if not len(X): return np.zeros((0, len(self.labels)), np.float32)
    if self.adapt in C.EMBED_ADAPT: return self._head_proba(self._embeddings(X, speakers), speakers)
    flat, n, v = self._flat_views(X); dev = self.device or C.default_device()
    groups = None if speakers is None else np.repeat(np.asarray(speakers).astype(str), v)
    pis = emotion_shares(self, flat, groups, dev) if CTX['correct'] else None
    if pis is not None and groups is None: groups = np.arange(len(flat)).astype(str)
    P = [torch.softmax(torch.from_numpy(logits_by_speaker(net.to(dev), flat, groups, dev, pis)), 1).numpy()
         for net in self.networks]
    return np.mean(P, axis=0).reshape(n, v, -1).mean(1)


def recorded(scored, file):
    "`scored` that also keeps, the first time each (fold, model, adaptation, grouping, skew) is scored, its probabilities."
    import pickle
    seen = {}
    def fn(rec, te, by_speaker=True):
        P, ok, _ = rec.predict_proba_batch(list(te.path), list(te.speaker) if by_speaker else None)
        spk = te.speaker.astype(str); n_emo = te.groupby(spk).emotion.nunique().min()
        key = (tuple(sorted(set(spk))), type(rec).__name__, getattr(rec, 'adapt', None), by_speaker, int(n_emo))
        if key not in seen:
            row = te.set_index('path').loc[ok]
            seen[key] = dict(P=P, speaker=row.speaker.astype(str).to_numpy(), emotion=row.emotion.to_numpy(),
                             labels=list(rec.labels), weight=getattr(rec, 'weight_', None))
            Path(file).write_bytes(pickle.dumps(seen))
        truth = dict(zip(te.path, te.emotion))     # as `scored`, from the same probabilities
        return round(uar([truth[p] for p in ok], [rec.labels[i] for i in P.argmax(1)]), 4)
    return fn


def patch():
    C.train_model, C.validation_scores = train_model, validation_scores
    C.CNNRecognizer._training_arrays, C.CNNRecognizer._embeddings = _training_arrays, _embeddings
    C.CNNRecognizer.fit, C.CNNRecognizer.predict_frames = fit, predict_frames


if __name__ == '__main__':
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument('--prior', type=float, default=8.0); ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--correct', action='store_true', help="take each test speaker's emotions' share out of the means")
    ap.add_argument('--hedge', type=float, default=0.5); ap.add_argument('--iters', type=int, default=2)
    ap.add_argument('--record', default=None,
                    help="a file (pickle): every scored prediction's probabilities, for the gate study (cnn_gate.py)")
    a, rest = ap.parse_known_args()
    CTX.update(prior=a.prior, batch=a.batch, correct=a.correct, hedge=a.hedge, iters=a.iters); patch()
    import warnings; warnings.simplefilter('ignore')
    import cnn_speed_speakers as css, json
    if a.record: css.scored = recorded(css.scored, a.record)
    css_args = argparse.ArgumentParser(add_help=False); css_args.add_argument('--out', default=str(
        Path(__file__).parent / 'results' / 'cnn_speed_speakers.json')); css_args = css_args.parse_known_args(rest)[0]
    sys.argv = [sys.argv[0]] + rest
    css.main()
    out = Path(css_args.out)   # the study's own settings, next to the result
    res = json.loads(out.read_text())
    res['settings']['speaker_bn'] = dict(vars(a), script='benchmarks/cnn_speaker_bn.py')
    out.write_text(json.dumps(res, indent=1))
