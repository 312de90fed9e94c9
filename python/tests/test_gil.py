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

    def test_python_runs_during_a_library_call(self):
        done = threading.Event()
        ticks = [0]

        def count():
            while not done.is_set():
                ticks[0] += 1

        t = threading.Thread(target=count)
        t.start()
        time.sleep(0.01)
        t0 = time.monotonic()
        before = ticks[0]
        for _ in range(3):
            self.models[0](self.x)
        during = ticks[0] - before
        dt = time.monotonic() - t0
        done.set()
        t.join()
        # with the GIL held for the whole call, the counting thread would get
        # (almost) nothing: it would run only in the Python glue between calls
        self.assertGreater(during, 1000, f"only {during} ticks during {dt:.3f} s of library calls")

    def test_two_models_two_threads(self):
        reps = 4
        spans = {0: [], 1: []}

        def work(i):
            for _ in range(reps):
                t0 = time.monotonic()
                self.models[i](self.x)
                spans[i].append((t0, time.monotonic()))

        t0 = time.monotonic()
        work(0)
        work(1)
        serial = time.monotonic() - t0
        spans = {0: [], 1: []}
        ths = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        t0 = time.monotonic()
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        parallel = time.monotonic() - t0
        # time during which both threads were inside a library call at once
        overlap = sum(max(0.0, min(a1, b1) - max(a0, b0)) for a0, a1 in spans[0] for b0, b1 in spans[1])
        print(f"  GIL: 2 models x {reps} forwards [T=150, B=8, 64->256, 2 layers], 1 library thread each: "
              f"one after the other {serial:.3f} s, two Python threads {parallel:.3f} s "
              f"(speed-up {serial / parallel:.2f}x on {os.cpu_count()} CPUs); calls overlapped "
              f"{100 * overlap / parallel:.0f}% of the time")
        self.assertGreater(overlap, 0.5 * parallel, "the two threads' library calls did not run at the same time")

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


if __name__ == "__main__":
    unittest.main()
