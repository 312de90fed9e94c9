"""The GIL is released while the library computes: Python code runs during a
long library call, and two threads with two models run at the same time.
Prints the measured speed-up of two models in two threads over one after the
other (informative: it depends on the free cores; the checks are not timing
ratios, which a loaded machine would make flaky)."""
import os
import threading
import time
import unittest

import numpy as np

import lstm


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class GIL(unittest.TestCase):
    def setUp(self):
        self.saved = lstm.get_num_threads()
        lstm.set_num_threads(1)
        self.models = [lstm.LSTM(64, 256, num_layers=2, seed=i).eval() for i in range(2)]
        self.x = rand(150, 8, 64)
        for m in self.models:
            m(self.x)  # warm: workspaces allocated

    def tearDown(self):
        lstm.set_num_threads(self.saved)

    def long_call_in_thread(self, during):
        """Runs one long library call (about 8 forwards' worth) in a thread and
        during() in this one meanwhile; returns the call's (start, end) and
        during()'s result."""
        big = rand(8 * 150, 8, 64, seed=1)
        started, span = threading.Event(), []

        def long_call():
            started.set()
            t0 = time.monotonic()
            self.models[0](big)
            span.extend((t0, time.monotonic()))

        t = threading.Thread(target=long_call)
        t.start()
        started.wait()
        time.sleep(0.02)  # the thread is inside the library by now
        res = during(t)
        t.join()
        return span, res

    def test_python_runs_during_a_library_call(self):
        def ticks(t):
            stamps = [time.monotonic()]
            while t.is_alive():
                stamps.append(time.monotonic())
            return stamps

        (t0, t1), stamps = self.long_call_in_thread(ticks)
        inside = [t0] + [s for s in stamps if t0 < s < t1] + [t1]
        gap = max(b - a for a, b in zip(inside, inside[1:]))
        # holding the GIL, the call would stop this loop for its whole length
        self.assertLess(gap, 0.5 * (t1 - t0), f"Python stood still {gap:.3f} s of a {t1 - t0:.3f} s call")

    def test_two_models_two_threads(self):
        small = lstm.LSTM(8, 16, seed=5).eval()
        xs = rand(10, 1, 8, seed=2)

        def short_calls(t):
            ends = []
            while t.is_alive():
                small(xs)
                ends.append(time.monotonic())
            return ends

        (c0, c1), ends = self.long_call_in_thread(short_calls)
        inside = sum(c0 < e < (c0 + c1) / 2 for e in ends)
        # holding the GIL, no call of the other model could finish in the first half of the long one
        # (only in the moment between its return into Python and its thread reading the clock)
        self.assertGreater(inside, 20, f"only {inside} calls of a second model ran during a {c1 - c0:.3f} s call")

        reps = 4

        def work(i):
            for _ in range(reps):
                self.models[i](self.x)

        t0 = time.monotonic()
        work(0)
        work(1)
        serial = time.monotonic() - t0
        ths = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        t0 = time.monotonic()
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        parallel = time.monotonic() - t0
        print(f"  GIL: {inside} calls of a second model finished in the first half of one {c1 - c0:.3f} s call; "
              f"2 models x {reps} forwards [T=150, B=8, 64->256, 2 layers], 1 library thread each: "
              f"one after the other {serial:.3f} s, in two Python threads {parallel:.3f} s "
              f"(speed-up {serial / parallel:.2f}x on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")

    def test_one_model_two_threads_is_safe(self):
        """Calls on one model from two threads take turns (its lock) and give the single-thread bits."""
        m = self.models[0]
        ref, _ = m(self.x)
        out = [None, None]

        def work(i):
            for _ in range(3):
                out[i], _ = m(self.x)

        ths = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        self.assertTrue(np.array_equal(out[0], ref) and np.array_equal(out[1], ref))

    def test_backward_meets_the_forward_it_was_sized_for(self):
        """A backward sizes its buffers by the workspace's last forward; a forward of
        another thread running before it takes the lock must not make the library
        write the other forward's steps into them (it did: 200 steps into dx of 1)."""
        from lstm import _lstm
        I, H, B, TB = 64, 64, 4, 200
        net = _lstm.Net(I, H, 1, 0, True, False)
        net.init_uniform(1)
        ws = _lstm.Workspace(net, TB, B, True)
        stop = threading.Event()

        def big():
            x, y = np.ones((TB, B, I), np.float32), np.empty((TB, B, H), np.float32)
            while not stop.is_set():
                ws.forward(TB, x, None, None, y, None, None)

        t = threading.Thread(target=big)
        t.start()
        x, y, dy = np.ones((1, B, I), np.float32), np.empty((1, B, H), np.float32), np.ones((1, B, H), np.float32)
        ran, overflow, t0 = 0, False, time.monotonic()
        try:
            while time.monotonic() - t0 < 3 and not overflow:
                ws.forward(1, x, None, None, y, None, None)
                guard = np.zeros((TB + 1, B, I), np.float32)  # dx is its first step; the rest must stay 0
                try:
                    ws.backward(dy, None, None, guard[:1], None, None)
                    ran += 1
                except (ValueError, RuntimeError):  # the other thread's forward came first: refused
                    pass
                overflow = bool(guard[1:].any())
        finally:
            stop.set()
            t.join()
        self.assertFalse(overflow, "backward wrote past its 1-step dx (%d backwards ran)" % ran)
        # alone (how many ran beside the other thread depends on the scheduler), it runs
        ws.forward(1, x, None, None, y, None, None)
        guard = np.zeros((TB + 1, B, I), np.float32)
        ws.backward(dy, None, None, guard[:1], None, None)
        self.assertTrue(guard[:1].any() and not guard[1:].any(), "a 1-step backward alone: dx, and nothing past it")

    def test_python_runs_while_a_char_model_is_made(self):
        """CharLM.new (lstm.train's model) allocates, zeroes and initializes the
        parameters without the GIL (it held it: the other thread stood still for
        the whole call)."""
        from lstm import _lstm
        span, started = [], threading.Event()

        def make():
            started.set()
            t0 = time.monotonic()
            _lstm.CharLM.new(bytes(range(256)), 256, 1024, 4, 0, 1)  # 33.6 M parameters
            span.extend((t0, time.monotonic()))

        t = threading.Thread(target=make)
        t.start()
        started.wait()
        stamps = [time.monotonic()]
        while t.is_alive():
            stamps.append(time.monotonic())
        t.join()
        t0, t1 = span
        inside = [t0] + [s for s in stamps if t0 < s < t1] + [t1]
        gap = max(b - a for a, b in zip(inside, inside[1:]))
        self.assertLess(gap, 0.5 * (t1 - t0), f"Python stood still {gap:.3f} s of a {t1 - t0:.3f} s call")

    def test_save_meta_emptied_by_another_thread(self):
        """save(path, meta) reads the metadata strings without the GIL: another
        thread emptying the list meanwhile must not free them under the library
        (it did: a segmentation fault on the first try)."""
        import subprocess
        import sys
        code = r"""
import tempfile, threading
from lstm import _lstm
c = _lstm.CharLM.new(b"abcdef", 4, 8, 1, 0, 1)
d = tempfile.mkdtemp()
for i in range(5):
    meta = []
    for k in range(8):
        meta += ["k%d" % k, chr(0x100 + i) * (1 << 20)]  # non-ASCII: the UTF-8 form is a malloc of its own
    go = threading.Event()
    t = threading.Thread(target=lambda: (go.wait(), meta.clear()))
    t.start()
    go.set()
    c.save(d + "/m.st", meta)
    t.join()
    m = _lstm.read_meta(d + "/m.st")
    assert all(m["k%d" % k] == chr(0x100 + i) * (1 << 20) for k in range(8)), "metadata from freed memory"
print("ok")
"""
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "ok"), r.stderr[-2000:])


if __name__ == "__main__":
    unittest.main()
