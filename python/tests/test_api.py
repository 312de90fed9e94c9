"""The Python interface's behaviour without PyTorch: shapes and layouts,
conversions, errors (the library's one-line messages, the right exception
types), nothing crashing on bad arguments, threads, train/eval, streaming."""
import importlib
import os
import unittest
import warnings

import numpy as np

import lstm
from lstm import _lstm
from lstm._rnn import as_f32
from _util import TempDir


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class Layouts(unittest.TestCase):
    def test_shapes(self):
        for kw, H_out, D in [({}, 8, 1), ({"bidirectional": True}, 8, 2), ({"proj_size": 3}, 3, 1)]:
            m = lstm.LSTM(5, 8, num_layers=2, **kw)
            y, (h, c) = m(rand(7, 4, 5))
            self.assertEqual((y.shape, h.shape, c.shape), ((7, 4, D * H_out), (2 * D, 4, H_out), (2 * D, 4, 8)))
            y, (h, c) = m(rand(7, 5))
            self.assertEqual((y.shape, h.shape, c.shape), ((7, D * H_out), (2 * D, H_out), (2 * D, 8)))
            dx, (dh, dc) = m.backward(np.ones_like(y))
            self.assertEqual((dx.shape, dh.shape, dc.shape), ((7, 5), (2 * D, H_out), (2 * D, 8)))

    def test_batch_first_is_a_transpose(self):
        a = lstm.LSTM(3, 6, num_layers=2, seed=4)
        b = lstm.LSTM(3, 6, num_layers=2, seed=4, batch_first=True)
        x = rand(5, 2, 3)
        ya, (ha, ca) = a(x)
        yb, (hb, cb) = b(x.transpose(1, 0, 2))
        self.assertTrue(np.array_equal(ya, yb.transpose(1, 0, 2)))
        self.assertTrue(np.array_equal(ha, hb) and np.array_equal(ca, cb))
        dxa, _ = a.backward(np.ones_like(ya))
        dxb, _ = b.backward(np.ones_like(yb))
        self.assertTrue(np.array_equal(dxa, dxb.transpose(1, 0, 2)))

    def test_unbatched_is_batch_of_one(self):
        m = lstm.LSTM(3, 6, seed=4)
        x = rand(5, 3)
        y1, (h1, c1) = m(x)
        y2, (h2, c2) = m(x[:, None, :])
        self.assertTrue(np.array_equal(y1, y2[:, 0]) and np.array_equal(h1, h2[:, 0]))

    def test_conversions(self):
        m = lstm.LSTM(3, 4, seed=1).eval()
        x = rand(6, 2, 3)
        self.assertIs(as_f32(x, "x"), x)  # float32 C-contiguous: used as it is, no copy
        y, _ = m(x)
        z = np.zeros((6, 2, 6), np.float32)
        z[:, :, ::2] = x
        for other in (x.astype(np.float64), np.asfortranarray(x), x.tolist(), z[:, :, ::2]):
            y2, _ = m(other)
            self.assertTrue(np.array_equal(y, y2))
        big = rand(6, 2, 6)
        y3, _ = m(big[:, :, ::2])  # a non-contiguous view
        y4, _ = m(np.ascontiguousarray(big[:, :, ::2]))
        self.assertTrue(np.array_equal(y3, y4))
        y5, _ = m(np.arange(36).reshape(6, 2, 3))  # integers
        self.assertEqual(y5.dtype, np.float32)

    def test_threads_same_bits(self):
        m = lstm.LSTM(16, 64, num_layers=2, seed=3)
        x = rand(30, 8, 16)
        outs = []
        for n in (1, 2, 3):
            lstm.set_num_threads(n)
            y, (h, c) = m(x)
            dx, _ = m.backward(np.ones_like(y))
            outs.append((y, h, c, dx, m.grad["weight_hh_l0"]))
            m.zero_grad()
        lstm.set_num_threads(1)
        for o in outs[1:]:
            self.assertTrue(all(np.array_equal(a, b) for a, b in zip(outs[0], o)))
        self.assertEqual(lstm.get_num_threads(), 1)

    @unittest.skipUnless(hasattr(os, "sched_setaffinity"), "no CPU affinity on this system")
    def test_default_threads_follow_affinity(self):
        # the default thread count is the cores this process may run on (taskset, a
        # container; SMT siblings once), at most 8, as lstm train counts them: one CPU -> 1
        import subprocess
        import sys
        code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
                "import lstm; print(lstm.get_num_threads())")
        r = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), b"1")
        self.assertTrue(1 <= lstm._lstm.cores_usable() <= len(os.sched_getaffinity(0)))

    def test_stream(self):
        m = lstm.LSTM(4, 8, num_layers=2, batch_first=True, seed=9).eval()
        x = rand(3, 25, 4)
        y, (h, c) = m(x)
        s = m.stream(batch=3)
        ys = np.concatenate([s(x[:, :1]), s(x[:, 1:10]), s(x[:, 10:])], axis=1)
        self.assertTrue(np.array_equal(y, ys), "pieces must give the bits of one call")
        self.assertTrue(np.array_equal(s.h, h) and np.array_equal(s.c, c))
        s.reset()
        self.assertTrue((s.h == 0).all() and (s.c == 0).all())
        s.h, s.c = h, c  # settable: continue from a given state
        y2, _ = m(rand(3, 5, 4, seed=1), (h, c))
        self.assertTrue(np.array_equal(s(rand(3, 5, 4, seed=1)), y2))
        u = m.stream(batch=None)
        yu = np.concatenate([u(x[0, :12]), u(x[0, 12:])])
        # batch 1 runs the batch-1 step (its own rounding): the bits of an unbatched
        # call, and within float32 rounding of the row of the batched one
        y1, _ = m(x[0])
        self.assertTrue(np.array_equal(yu, y1))
        self.assertLess(np.abs(yu - y[0]).max(), 1e-5)
        self.assertEqual(u.h.shape, (2, 8))
        # parameters changed under a live stream: it follows them
        m2 = lstm.LSTM(4, 8, num_layers=2, batch_first=True, seed=10).eval()
        s = m.stream(batch=3)
        s(x)  # the same piece length before and after: the stream keeps its workspace
        m.load_state_dict(m2.state_dict())
        s.reset()
        self.assertTrue(np.array_equal(s(x), m2(x)[0]))

    def test_forward_follows_new_parameters(self):
        # inference keeps its packed weights between forwards (LSTM_WS_KEEP_PACKS):
        # load_state_dict must repack them, in every shape of the library's paths
        for kw in ({}, {"proj_size": 3}, {"bidirectional": True}):
            for B in (1, 5, 40):
                m = lstm.LSTM(6, 20, num_layers=2, seed=3, **kw).eval()
                m2 = lstm.LSTM(6, 20, num_layers=2, seed=4, **kw).eval()
                x = rand(7, B, 6, seed=2)
                y1, _ = m(x)
                self.assertTrue(np.array_equal(m(x)[0], y1))  # packed once, same bits
                m.load_state_dict(m2.state_dict())
                self.assertTrue(np.array_equal(m(x)[0], m2(x)[0]), f"{kw} B={B}")
        # a training workspace made after the change must not mark the inference one as repacked
        m = lstm.LSTM(6, 20, num_layers=2, seed=3).eval()
        m2 = lstm.LSTM(6, 20, num_layers=2, seed=4).eval()
        x = rand(7, 5, 6, seed=2)
        m(x)
        m.load_state_dict(m2.state_dict())
        m.train()(x)
        self.assertTrue(np.array_equal(m.eval()(x)[0], m2(x)[0]), "eval after a train forward used the old weights")
        g = lstm.GRU(6, 20, seed=3).eval()
        x = rand(7, 5, 6, seed=2)
        g(x)
        g.load_state_dict(lstm.GRU(6, 20, seed=4).state_dict())
        self.assertTrue(np.array_equal(g(x)[0], lstm.GRU(6, 20, seed=4).eval()(x)[0]))

    def test_train_eval_backward_rules(self):
        m = lstm.LSTM(3, 4)
        self.assertIs(m.eval(), m)
        self.assertFalse(m.training)
        y, _ = m(rand(2, 1, 3))
        with self.assertRaisesRegex(RuntimeError, "training mode"):
            m.backward(np.ones_like(y))
        m.train()
        y, _ = m(rand(2, 1, 3))
        m.backward(np.ones_like(y))
        with self.assertRaisesRegex(RuntimeError, "one backward"):
            m.backward(np.ones_like(y))
        y, _ = m(rand(2, 1, 3))
        m.backward(None)  # dy = zeros
        with self.assertRaises(ValueError):
            y, _ = m(rand(2, 1, 3))
            m.backward(np.ones((3, 1, 4), np.float32))


class Errors(unittest.TestCase):
    def test_state_dict_errors_name_the_tensor(self):
        m = lstm.LSTM(3, 4, num_layers=2)
        sd = m.state_dict()
        bad = dict(sd)
        del bad["bias_hh_l1"]
        with self.assertRaisesRegex(ValueError, '"bias_hh_l1"'):
            m.load_state_dict(bad)
        bad = dict(sd, weight_hr_l0=np.zeros((2, 4)))
        with self.assertRaisesRegex(ValueError, '"weight_hr_l0"'):
            m.load_state_dict(bad)
        bad = dict(sd, weight_ih_l1=np.zeros((16, 3)))
        with self.assertRaisesRegex(ValueError, "weight_ih_l1.*\\[16, 4\\].*\\[16, 3\\]"):
            m.load_state_dict(bad)
        before = m.state_dict()
        bad = dict(sd, weight_ih_l0=np.ones((16, 3)), weight_hh_l1=np.zeros(3))
        with self.assertRaisesRegex(ValueError, "weight_hh_l1"):
            m.load_state_dict(bad)
        self.assertTrue(all(np.array_equal(before[k], v) for k, v in m.state_dict().items()),
                        "a failed load must change nothing")
        with self.assertRaises(TypeError):
            m.load_state_dict([1, 2])

    def test_file_errors(self):
        with TempDir() as d:
            with self.assertRaises(OSError) as e:
                lstm.load(d + "/absent.safetensors")
            self.assertIn("absent.safetensors", str(e.exception))
            p = d + "/garbage.safetensors"
            with open(p, "wb") as f:
                f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
            with self.assertRaises(ValueError) as e:
                lstm.load(p)
            self.assertIn("garbage.safetensors", str(e.exception))
            self.assertNotIn("\n", str(e.exception))
            with self.assertRaises(OSError):
                lstm.LSTM(2, 3).save(d + "/no/such/dir/m.safetensors")
            with self.assertRaises(OSError):
                lstm.CharModel.load(d + "/absent.safetensors")
            lstm.LSTM(2, 3).save(d + "/m.safetensors")
            with self.assertRaisesRegex(ValueError, "vocab"):
                lstm.CharModel.load(d + "/m.safetensors")
            with self.assertRaises(ValueError):
                lstm.load(d + "/m.safetensors", prefix="nothing.")

    def test_bad_configs(self):
        for args, kw in [((0, 4), {}), ((3, 0), {}), ((3, 4), {"num_layers": 0}), ((3, 4), {"proj_size": 4}),
                         ((3, 4), {"proj_size": -1}), ((3, 4), {"dropout": 1.5}), ((3, 4), {"dropout": -0.1}),
                         ((3.5, 4), {}), (("3", 4), {}), ((None, 4), {}), ((2**40, 4), {}),
                         ((3, 4), {"seed": -1}), ((3, 4), {"seed": 2**64})]:
            with self.subTest(args=args, kw=kw):
                with self.assertRaises(ValueError):
                    lstm.LSTM(*args, **kw)
        with self.assertRaises(ValueError):
            lstm.set_num_threads(0)
        for p in (np.int64(0), np.int32(1), np.float32(0.5)):  # NumPy numbers, as torch takes them
            self.assertEqual(lstm.LSTM(3, 4, num_layers=2, dropout=p).dropout, float(p))

    def test_huge_sizes_fail_cleanly(self):
        for args in [(2**31 - 1, 2**31 - 1), (1, 2**30), (2**30, 2**20, 1000)]:
            with self.subTest(args=args):
                with self.assertRaises((ValueError, MemoryError)):
                    lstm.LSTM(*args)
        m = lstm.LSTM(2, 3)
        with self.assertRaises((ValueError, MemoryError)):
            m(np.broadcast_to(np.float32(0), (2**31, 1, 2)))
        with self.assertRaises((ValueError, MemoryError)):
            m.stream(batch=2**31 - 1)

    def test_bad_inputs(self):
        m = lstm.LSTM(3, 4, num_layers=2)
        cases = [None, "abc", [[1, 2]], rand(3), rand(2, 2, 2, 3), rand(4, 2, 2), rand(0, 2, 3),
                 np.array([[["a", "b", "c"]]]), np.zeros((2, 1, 3), dtype=complex), object(), {"x": 1}]
        for x in cases:
            with self.subTest(x=type(x).__name__ + str(getattr(x, "shape", ""))):
                with self.assertRaises((TypeError, ValueError)):
                    m(x)
        x = rand(5, 2, 3)
        for hx in [rand(2, 2, 4), (rand(2, 2, 4),), (rand(2, 2, 4), None), (rand(1, 2, 4), rand(2, 2, 4)),
                   (rand(2, 2, 4), rand(2, 3, 4)), (rand(2, 4), rand(2, 4)), "hx"]:
            with self.subTest(hx=str(getattr(hx, "shape", hx))[:40]):
                with self.assertRaises((TypeError, ValueError)):
                    m(x, hx)
        y, _ = m(x)
        for dy in ["dy", rand(5, 2, 5), rand(5, 4)]:
            with self.assertRaises((TypeError, ValueError)):
                m.backward(dy)
        m(x)
        for kw in [{"dhn": rand(2, 2, 5)}, {"dcn": rand(2, 4)}]:
            with self.assertRaises(ValueError):
                m.backward(np.ones_like(y), **kw)
        s = m.stream(batch=2)
        for piece in [rand(3, 1, 3), rand(3, 3), rand(3, 2, 4), None]:
            with self.assertRaises((TypeError, ValueError)):
                s(piece)
        with self.assertRaises(ValueError):
            s.h = rand(2, 3, 4)
        with self.assertRaisesRegex(ValueError, "bidirectional"):
            lstm.LSTM(3, 4, bidirectional=True).stream()

    def test_extension_checks_every_buffer(self):
        """The C layer refuses wrong sizes, types and read-only outputs by itself."""
        net = _lstm.Net(3, 4, 1, 0, True, False)
        ws = _lstm.Workspace(net, 5, 2, True)
        x, y = np.zeros((5, 2, 3), np.float32), np.zeros((5, 2, 4), np.float32)
        ws.forward(5, x, None, None, y, None, None)
        bad_calls = [
            lambda: ws.forward(6, x, None, None, y, None, None),           # T above the workspace
            lambda: ws.forward(0, x, None, None, y, None, None),
            lambda: ws.forward(5, x[:4], None, None, y, None, None),       # too few floats
            lambda: ws.forward(5, x.astype(np.float64), None, None, y, None, None),
            lambda: ws.forward(5, x, None, None, y[:, :, ::2], None, None),  # not contiguous
            lambda: ws.forward(5, x, None, None, bytes(160), None, None),  # read-only output
            lambda: ws.forward(5, x, np.zeros(7, np.float32), None, y, None, None),
            lambda: ws.forward(5, None, None, None, y, None, None),
            lambda: ws.forward(5, "x", None, None, y, None, None),
            lambda: ws.backward(np.zeros(3, np.float32), None, None, None, None, None),
            lambda: ws.set_threads(0),
            lambda: ws.set_threads(10**6),
            lambda: ws.set_dropout(1.5, 1),
            lambda: _lstm.Workspace(net, 0, 2, False),
            lambda: _lstm.Net(3, 4, 1, 5, True, False),
            lambda: _lstm.State(net, 0),
        ]
        for i, f in enumerate(bad_calls):
            with self.subTest(case=i):
                with self.assertRaises((TypeError, ValueError, RuntimeError, OverflowError, BufferError)):
                    f()
        with self.assertRaisesRegex(ValueError, r"got 1\.5$"):  # the value, not a literal "%g"
            ws.set_dropout(1.5, 1)
        # a train workspace cannot stream (the library refuses it; a stream recorded there made the
        # next backward write the stream's steps into a dx sized for the last forward)
        with self.assertRaisesRegex(ValueError, "inference workspace"):
            ws.stream(_lstm.State(net, 2), 5, x, y)
        ws.backward(None, None, None, None, None, None)  # the good forward is still usable
        # a stream whose y is its x: refused like forward's (it ran, and returned wrong values)
        net8 = _lstm.Net(4, 4, 1, 0, True, False)
        ws8 = _lstm.Workspace(net8, 5, 2, False)
        a = np.full((5, 2, 4), 0.3, np.float32)
        with self.assertRaisesRegex(ValueError, "x and y overlap"):
            ws8.stream(_lstm.State(net8, 2), 5, a, a)
        # dropout above 0 needs a random state (the rng argument is the extension's own): accepted
        ws.set_dropout(0.5, 1)
        # metadata with a NUL (C strings would end there): refused, nothing written
        c = _lstm.CharLM.new(b"abc", 4, 8, 1, 0, 1)
        with TempDir() as d:
            for meta in (["key\0tail", "v"], ["k", "val\0tail"]):
                with self.assertRaisesRegex(ValueError, "NUL"):
                    c.save(d + "/m.st", meta)
            self.assertFalse(os.path.exists(d + "/m.st"))
            c.save(d + "/m.st", ["k", "v"])
            self.assertEqual(_lstm.read_meta(d + "/m.st")["k"], "v")

    def test_fuzz_public_calls(self):
        """Junk in every argument position of the public calls: exceptions only
        (a crash would take the test process down)."""
        junk = [None, -1, 0, 2**31, 2**64, -2**63, 1e308, float("nan"), float("inf"), "x", b"\xff", [], {},
                object(), np.zeros((0,), np.float32), np.zeros((2, 2), np.int8), rand(1, 1, 1), True]
        m = lstm.LSTM(3, 4, num_layers=2)

        def small(a):  # valid but huge lengths and step counts would only take long
            return 7 if isinstance(a, int) and a > 1000 else a

        with TempDir() as d:
            lstm.train(data=b"abcdefgh" * 200, out=d + "/c.safetensors", steps=1, hidden=8, layers=1, embed=4,
                       batch=2, bptt=8, threads=1)
            c = lstm.CharModel.load(d + "/c.safetensors")
            calls = [
                lambda a: lstm.LSTM(a, 4), lambda a: lstm.LSTM(3, a), lambda a: lstm.LSTM(3, 4, num_layers=a),
                lambda a: lstm.LSTM(3, 4, proj_size=a), lambda a: lstm.LSTM(3, 4, dropout=a),
                lambda a: lstm.LSTM(3, 4, seed=a), lambda a: m(a), lambda a: m(rand(2, 1, 3), a),
                lambda a: m(rand(2, 1, 3), (a, a)), lambda a: m.backward(a), lambda a: m.backward(None, a),
                lambda a: m.load_state_dict(a), lambda a: m.load_state_dict({"weight_ih_l0": a}),
                lambda a: m.save(a), lambda a: lstm.load(a), lambda a: lstm.load(d + "/c.safetensors", a),
                lambda a: m.stream(a), lambda a: m.stream(1)(a), lambda a: lstm.set_num_threads(a),
                lambda a: lstm.CharModel.load(a), lambda a: c.generate(prime=a, length=3),
                lambda a: c.generate(length=small(a)), lambda a: c.generate(length=3, temperature=a),
                lambda a: c.generate(length=3, top_k=a), lambda a: c.generate(length=3, seed=a),
                lambda a: c.evaluate(a), lambda a: c.evaluate(b"abcabc", bptt=a),
                lambda a: lstm.train(data=a, out=d + "/f.safetensors", steps=1),
                lambda a: lstm.train(data=b"abcdefgh" * 200, out=d + "/f.safetensors", steps=1, batch=2, bptt=8,
                                     hidden=a, layers=1, embed=4, threads=1),
                lambda a: lstm.train(data=b"abcdefgh" * 200, out=d + "/f.safetensors", steps=small(a), batch=2,
                                     bptt=8, hidden=4, layers=1, embed=4, threads=1, lr=a),
            ]
            cwd = os.getcwd()
            os.chdir(d)  # a junk name that is a valid path ("x") is written here
            try:
                self.fuzz(calls, junk, m)
            finally:
                os.chdir(cwd)
            lstm.set_num_threads(1)
            y, _ = m(rand(4, 2, 3))  # still works
            self.assertEqual(y.shape, (4, 2, 4))

    @staticmethod
    def fuzz(calls, junk, m):
        if True:
            for i, f in enumerate(calls):
                for a in junk:
                    try:
                        with np.errstate(all="ignore"), warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            f(a)
                    except (TypeError, ValueError, OSError, MemoryError, RuntimeError, OverflowError):
                        pass
                    m.train()

    def test_messages_are_one_line(self):
        with TempDir() as d:
            for f in (lambda: lstm.load(d + "/x"), lambda: lstm.LSTM(3, 4, proj_size=9)):
                try:
                    f()
                except (OSError, ValueError) as e:
                    self.assertTrue(str(e) and "\n" not in str(e), repr(e))
                else:
                    self.fail("no exception")

    def test_docstrings(self):
        names = [lstm.LSTM, lstm.GRU, lstm.load, lstm.Stream, lstm.CharModel, lstm.train, lstm.set_num_threads,
                 lstm.get_num_threads, lstm]
        for cls in (lstm.LSTM, lstm.GRU, lstm.Stream, lstm.CharModel):
            names += [getattr(cls, n) for n in dir(cls) if not n.startswith("_")]
        plot = importlib.import_module("lstm.plot")
        names += [plot, plot.main, plot.plot, plot.read_log]
        missing = [getattr(o, "__qualname__", getattr(o, "__name__", repr(o))) for o in names
                   if callable(o) or isinstance(o, (property, type(lstm)))
                   if not (getattr(o, "__doc__", None) or "").strip()]
        self.assertEqual(missing, [])


if __name__ == "__main__":
    unittest.main()
