"""lstm.LSTM against torch.nn.LSTM: forward, backward, parameter gradients,
layouts (time-major, batch_first, unbatched), bidirectional, projections,
streaming, and the state_dict round trip.  The reference is PyTorch in
float64; our float32 error must be of the order of PyTorch's float32 error."""
import unittest

import numpy as np

import lstm
from _util import TempDir, close_as_torch, torch, torch_lstm

CONFIGS = [  # (I, H, kwargs)
    (5, 8, {}),
    (7, 16, {"num_layers": 2}),
    (6, 12, {"num_layers": 2, "bidirectional": True}),
    (4, 10, {"num_layers": 2, "proj_size": 3}),
    (5, 9, {"num_layers": 3, "bidirectional": True, "proj_size": 4, "bias": False}),
    (3, 8, {"batch_first": True, "num_layers": 2}),
    (3, 8, {"batch_first": True, "bidirectional": True, "proj_size": 5}),
]


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@unittest.skipIf(torch is None, "/usr/bin/python3 has no torch (apt-get install python3-torch)")
class TorchLSTM(unittest.TestCase):
    def run_case(self, I, H, kw, unbatched=False, with_state=True, T=9, B=3):
        m = lstm.LSTM(I, H, seed=11, **kw)
        L, D = m.num_layers, 2 if m.bidirectional else 1
        Hout = m.proj_size or H
        if unbatched:
            x = rand(T, I, seed=1)
            h0, c0 = rand(L * D, Hout, seed=2), rand(L * D, H, seed=3)
        else:
            x = rand(B, T, I, seed=1) if m.batch_first else rand(T, B, I, seed=1)
            h0, c0 = rand(L * D, B, Hout, seed=2), rand(L * D, B, H, seed=3)
        hx = (h0, c0) if with_state else None
        y, (hn, cn) = m(x, hx)
        res = {}
        outs = {}
        for dt in (torch.float32, torch.float64):
            t = torch_lstm(m, dt)
            xt = torch.tensor(x, dtype=dt, requires_grad=True)
            hxt = tuple(torch.tensor(a, dtype=dt, requires_grad=True) for a in (h0, c0)) if with_state else None
            yt, (hnt, cnt) = t(xt, hxt)
            self.assertEqual(tuple(yt.shape), y.shape)
            self.assertEqual(tuple(hnt.shape), hn.shape)
            self.assertEqual(tuple(cnt.shape), cn.shape)
            dy, dhn, dcn = rand(*y.shape, seed=4), rand(*hn.shape, seed=5), rand(*cn.shape, seed=6)
            (yt * torch.tensor(dy, dtype=dt)).sum().add_((hnt * torch.tensor(dhn, dtype=dt)).sum()) \
                .add_((cnt * torch.tensor(dcn, dtype=dt)).sum()).backward()
            outs[dt] = {"y": yt, "hn": hnt, "cn": cnt, "dx": xt.grad}
            if with_state:
                outs[dt]["dh0"], outs[dt]["dc0"] = hxt[0].grad, hxt[1].grad
            for n, p in t.named_parameters():
                outs[dt]["grad." + n] = p.grad
        m.zero_grad()
        dx, (dh0, dc0) = m.backward(dy, dhn, dcn)
        ours = {"y": y, "hn": hn, "cn": cn, "dx": dx, "dh0": dh0, "dc0": dc0}
        for n, g in m.grad.items():
            ours["grad." + n] = g
        for k, ref in outs[torch.float64].items():
            self.assertEqual(ours[k].shape, tuple(ref.shape), k)
            res[k] = close_as_torch(ours[k], outs[torch.float32][k].detach().numpy(), ref.detach().numpy(), k)
        return res

    def test_forward_backward_configs(self):
        worst = 0.0
        for I, H, kw in CONFIGS:
            with self.subTest(I=I, H=H, **kw):
                res = self.run_case(I, H, kw)
                worst = max(worst, max(e for e, _ in res.values()))
        print(f"  worst relative error over {len(CONFIGS)} configurations: {worst:.3g}")

    def test_no_initial_state(self):
        for I, H, kw in CONFIGS[:4]:
            with self.subTest(I=I, H=H, **kw):
                self.run_case(I, H, kw, with_state=False)

    def test_unbatched(self):
        for I, H, kw in CONFIGS:
            with self.subTest(I=I, H=H, **kw):
                self.run_case(I, H, kw, unbatched=True)

    def test_empty_batch(self):
        """A batch of 0 sequences: the shapes PyTorch gives, no gradient added."""
        for mod, tmod in ((lstm.LSTM, torch.nn.LSTM), (lstm.GRU, torch.nn.GRU)):
            for bf in (False, True):
                m = mod(4, 6, num_layers=2, bidirectional=True, batch_first=bf, seed=1)
                t = tmod(4, 6, num_layers=2, bidirectional=True, batch_first=bf)
                x = np.zeros((0, 3, 4) if bf else (3, 0, 4), dtype=np.float32)
                y, hn = m(x)
                ty, thn = t(torch.from_numpy(x))
                self.assertEqual(y.shape, tuple(ty.shape))
                hs = hn if isinstance(hn, tuple) else (hn,)
                ths = thn if isinstance(thn, tuple) else (thn,)
                self.assertEqual([a.shape for a in hs], [tuple(a.shape) for a in ths])
                m.zero_grad()
                dx, _ = m.backward(np.zeros_like(y))
                self.assertEqual(dx.shape, x.shape)
                self.assertTrue(all((g == 0).all() for g in m.grad.values()))
                with self.assertRaises(ValueError):
                    m(np.zeros((3, 0, 4) if bf else (0, 3, 4), dtype=np.float32))  # T = 0: refused, as torch

    def test_long_sequence_batch(self):
        self.run_case(16, 32, {"num_layers": 2}, T=200, B=8)

    def test_grad_accumulates(self):
        m = lstm.LSTM(4, 6, num_layers=2, seed=3)
        x = rand(5, 2, 4)
        y, _ = m(x)
        m.backward(np.ones_like(y))
        g1 = m.grad
        y, _ = m(x)
        m.backward(np.ones_like(y))
        for n, g in m.grad.items():
            np.testing.assert_allclose(g, 2 * g1[n], rtol=1e-6, atol=1e-7, err_msg=n)
        m.zero_grad()
        self.assertTrue(all((g == 0).all() for g in m.grad.values()))

    def test_streaming_matches_torch(self):
        m = lstm.LSTM(5, 12, num_layers=2, proj_size=4, seed=5).eval()
        x = rand(20, 3, 5)
        s = m.stream(batch=3)
        y = np.concatenate([s(x[:7]), s(x[7:8]), s(x[8:])])
        t = torch_lstm(m, torch.float64)
        yt, (hnt, cnt) = t(torch.tensor(x, dtype=torch.float64))
        t32 = torch_lstm(m, torch.float32)
        y32, _ = t32(torch.tensor(x))
        close_as_torch(y, y32.detach().numpy(), yt.detach().numpy(), "stream y")
        np.testing.assert_allclose(s.h, hnt.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s.c, cnt.detach().numpy(), rtol=1e-5, atol=1e-6)

    def test_state_dict_round_trip(self):
        t = torch.nn.LSTM(6, 10, 2, bidirectional=True, proj_size=4)
        m = lstm.LSTM(6, 10, 2, bidirectional=True, proj_size=4, seed=1)
        m.load_state_dict(t.state_dict())              # torch tensors, as they are
        m.load_state_dict(dict(t.named_parameters()))  # requires_grad tensors too
        sd = m.state_dict()
        self.assertEqual(list(sd), list(t.state_dict()))
        for k, v in t.state_dict().items():
            self.assertEqual(sd[k].dtype, np.float32)
            self.assertTrue(np.array_equal(sd[k], v.numpy()), k)
        t2 = torch.nn.LSTM(6, 10, 2, bidirectional=True, proj_size=4)
        t2.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
        for k, v in t2.state_dict().items():
            self.assertTrue(torch.equal(v, t.state_dict()[k]), k)
        with TempDir() as d:  # and through a file, under a prefix
            m.save(d + "/m.safetensors", prefix="rnn.")
            m2 = lstm.load(d + "/m.safetensors", prefix="rnn.")
            self.assertEqual(repr(m2), repr(m))
            for k, v in m2.state_dict().items():
                self.assertTrue(np.array_equal(v, sd[k]), k)
        x = rand(4, 2, 6)
        y, _ = m.eval()(x)
        yt, _ = t(torch.from_numpy(x))
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        # bfloat16 tensors (NumPy has none: .numpy() raised TypeError) convert exactly, as float16 ones
        for dt in (torch.bfloat16, torch.float16):
            tb = torch.nn.LSTM(6, 10, 2, bidirectional=True, proj_size=4).to(dt)
            m.load_state_dict(tb.state_dict())
            for k, v in tb.state_dict().items():
                self.assertTrue(np.array_equal(m.state_dict()[k], v.float().numpy()), f"{dt} {k}")
            xb = torch.from_numpy(x).to(dt)
            yb, _ = m(xb)
            self.assertTrue(np.array_equal(yb, m(xb.float().numpy())[0]), f"{dt} input")

    def test_init_law(self):
        m = lstm.LSTM(30, 50, num_layers=2, proj_size=20, seed=7)
        k = 1 / np.sqrt(50)
        allp = np.concatenate([v.ravel() for v in m.state_dict().values()])
        self.assertLessEqual(np.abs(allp).max(), k)
        self.assertGreater(np.abs(allp).max(), 0.99 * k)
        self.assertLess(abs(allp.mean()), 0.01 * k)
        self.assertAlmostEqual(allp.std(), k / np.sqrt(3), delta=0.01 * k)  # U(-k, k)
        a = lstm.LSTM(3, 4, seed=1).state_dict()
        b = lstm.LSTM(3, 4, seed=1).state_dict()
        c = lstm.LSTM(3, 4, seed=2).state_dict()
        self.assertTrue(all(np.array_equal(a[n], b[n]) for n in a))
        self.assertFalse(all(np.array_equal(a[n], c[n]) for n in a))

    def test_dropout_train_eval(self):
        m = lstm.LSTM(4, 8, num_layers=3, dropout=0.5, seed=2)
        x = rand(6, 2, 4)
        y_train1, _ = m(x)
        y_train2, _ = m(x)
        self.assertFalse(np.array_equal(y_train1, y_train2))  # a fresh mask each forward
        m.backward(np.ones_like(y_train2))                      # backward through the masks
        y_eval, _ = m.eval()(x)
        t = torch_lstm(m, torch.float32).eval()
        yt, _ = t(torch.from_numpy(x))
        np.testing.assert_allclose(y_eval, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        self.assertFalse(np.allclose(y_train1, y_eval))

    def test_dropout_set_later(self):
        """m.dropout set after construction takes effect at the next training forward, as
        nn.LSTM's does (it was read once, when a training workspace was made: whether a call
        dropped depended on earlier calls' shapes)."""
        x, x3 = rand(5, 2, 3, seed=1), rand(5, 3, 3, seed=2)
        m = lstm.LSTM(3, 8, num_layers=2, seed=1)
        y0, _ = m(x)
        y_eval, _ = m.eval()(x)
        m.train()
        np.testing.assert_array_equal(y0, y_eval)   # no dropout: train and eval alike
        m.dropout = 0.9
        y1, _ = m(x)                                # the same workspace, now with dropout
        self.assertFalse(np.array_equal(y1, y0))
        m.dropout = 0.0
        y2, _ = m(x)
        np.testing.assert_array_equal(y2, y0)
        m(x3)                                       # another batch size: a new workspace, still none
        np.testing.assert_array_equal(m(x)[0], y0)
        m2 = lstm.LSTM(3, 8, num_layers=2, seed=1, dropout=0.9)
        m2(x)
        m2.dropout = 0.0
        np.testing.assert_array_equal(m2(x)[0], y0)


GRU_CONFIGS = [(5, 8, {}), (6, 12, {"num_layers": 2, "bidirectional": True}), (4, 9, {"num_layers": 3, "bias": False}),
               (3, 8, {"batch_first": True, "num_layers": 2})]


@unittest.skipIf(torch is None, "/usr/bin/python3 has no torch (apt-get install python3-torch)")
class TorchGRU(unittest.TestCase):
    def run_case(self, I, H, kw, unbatched=False, T=9, B=3):
        g = lstm.GRU(I, H, seed=12, **kw)
        LD = g.num_layers * (2 if g.bidirectional else 1)
        if unbatched:
            x, h0 = rand(T, I, seed=1), rand(LD, H, seed=2)
        else:
            x = rand(B, T, I, seed=1) if g.batch_first else rand(T, B, I, seed=1)
            h0 = rand(LD, B, H, seed=2)
        y, hn = g(x, h0)
        dy, dhn = rand(*y.shape, seed=4), rand(*hn.shape, seed=5)
        g.zero_grad()
        dx, dh0 = g.backward(dy, dhn)
        ours = {"y": y, "hn": hn, "dx": dx, "dh0": dh0, **{"grad." + n: v for n, v in g.grad.items()}}
        refs = {}
        for dt in (torch.float32, torch.float64):
            t = torch.nn.GRU(I, H, **kw).to(dt)
            t.load_state_dict({k: torch.from_numpy(v).to(dt) for k, v in g.state_dict().items()})
            xt = torch.tensor(x, dtype=dt, requires_grad=True)
            ht = torch.tensor(h0, dtype=dt, requires_grad=True)
            yt, hnt = t(xt, ht)
            ((yt * torch.tensor(dy, dtype=dt)).sum() + (hnt * torch.tensor(dhn, dtype=dt)).sum()).backward()
            refs[dt] = {"y": yt, "hn": hnt, "dx": xt.grad, "dh0": ht.grad,
                        **{"grad." + n: p.grad for n, p in t.named_parameters()}}
        for k, ref in refs[torch.float64].items():
            self.assertEqual(ours[k].shape, tuple(ref.shape), k)
            close_as_torch(ours[k], refs[torch.float32][k].detach().numpy(), ref.detach().numpy(), "GRU " + k)

    def test_forward_backward(self):
        for I, H, kw in GRU_CONFIGS:
            with self.subTest(I=I, H=H, **kw):
                self.run_case(I, H, kw)
                self.run_case(I, H, kw, unbatched=True)

    def test_stream_file_and_no_c(self):
        g = lstm.GRU(4, 6, num_layers=2, seed=3).eval()
        x = rand(20, 2, 4)
        y, hn = g(x)
        s = g.stream(batch=2)
        self.assertTrue(np.array_equal(np.concatenate([s(x[:7]), s(x[7:])]), y))
        self.assertTrue(np.array_equal(s.h, hn))
        with self.assertRaises(AttributeError):
            s.c
        with TempDir() as d:
            g.save(d + "/g.safetensors")
            g2 = lstm.load(d + "/g.safetensors")
            self.assertIsInstance(g2, lstm.GRU)
            self.assertTrue(np.array_equal(g2.eval()(x)[0], y))
        t = torch.nn.GRU(4, 6, 2)
        g.load_state_dict(t.state_dict())
        yt, _ = t(torch.from_numpy(x))
        np.testing.assert_allclose(g(x)[0], yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        with self.assertRaisesRegex(ValueError, "weight_ih_l0"):
            g.load_state_dict(torch.nn.LSTM(4, 6, 2).state_dict())


if __name__ == "__main__":
    unittest.main()
