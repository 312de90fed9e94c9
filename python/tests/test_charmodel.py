"""CharModel and lstm.train against the CLI: a model trained by `lstm train`
for a few steps; generate == `lstm sample`, evaluate == `lstm eval --json`;
lstm.train writes the same model and checkpoint bytes as `lstm train` with the
same options, resumes the CLI's checkpoints, stops on its callback; and
`python3 -m lstm.plot` draws the log."""
import json
import os
import shutil
import subprocess
import sys
import unittest

import numpy as np

import lstm
from lstm._charlm import _log_line
from _util import TempDir, lstm_bin, run_cli, sub_env

OPTS = ["--hidden", "24", "--layers", "2", "--embed", "8", "--batch", "4", "--bptt", "16", "--eval-every", "10",
        "--checkpoint-every", "20", "--seed", "3", "--threads", "1", "--lr", "0.01"]
KW = dict(hidden=24, layers=2, embed=8, batch=4, bptt=16, eval_every=10, checkpoint_every=20, seed=3, threads=1,
          lr=0.01)


def corpus(n=12000, seed=0):
    """Deterministic text: words from a small list with punctuation and lines."""
    words = ("the quick brown fox jumps over a lazy dog and then it runs back to its den while "
             "birds sing in old trees near water").split()
    rng = np.random.default_rng(seed)
    out, line = [], []
    while sum(map(len, out)) < n:
        line.append(words[rng.integers(len(words))])
        if len(line) > 8 + rng.integers(6):
            out.append(" ".join(line).capitalize() + ".\n")
            line = []
    return "".join(out).encode()[:n]


@unittest.skipIf(lstm_bin() is None, "the CLI is not built (make); set LSTM_BIN to use another")
class CharModelVsCLI(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.d = cls.tmp.__enter__()
        cls.data = os.path.join(cls.d, "data.txt")
        with open(cls.data, "wb") as f:
            f.write(corpus())
        cls.model = os.path.join(cls.d, "cli.safetensors")
        run_cli("train", "--data", cls.data, "--out", cls.model, "--steps", "30", "--log",
                os.path.join(cls.d, "cli.jsonl"), *OPTS)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.__exit__(None, None, None)

    def test_load(self):
        c = lstm.CharModel.load(self.model)
        self.assertEqual((c.embed_size, c.hidden_size, c.num_layers, c.proj_size), (8, 24, 2, 0))
        self.assertEqual(c.vocab, bytes(sorted(set(corpus()))))
        sd = c.state_dict()
        self.assertEqual(list(sd)[:3], ["embedding.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0"])
        self.assertEqual(sd["head.weight"].shape, (len(c.vocab), 24))

    def test_generate_matches_sample(self):
        c = lstm.CharModel.load(self.model)
        for prime, T, k, seed in [(b"", 0.0, 0, 1), (b"The ", 0.8, 0, 5), (b"a", 1.0, 5, 7), (b"", 1.3, 0, 0)]:
            with self.subTest(prime=prime, T=T, k=k, seed=seed):
                args = ["sample", "--model", self.model, "--length", "120", "--temperature", repr(T),
                        "--top-k", str(k), "--seed", str(seed)]
                if prime:
                    args += ["--prime", prime.decode()]
                ours = c.generate(prime=prime, length=120, temperature=T, top_k=k, seed=seed)
                self.assertEqual(ours, run_cli(*args))
                for th in (1, 2):  # (the default, 0, lets the library choose)
                    self.assertEqual(c.generate(prime=prime, length=120, temperature=T, top_k=k, seed=seed,
                                                threads=th), ours)
                self.assertEqual(run_cli(*args, "--threads", "3"), ours)
        self.assertEqual(c.generate("The ", length=0, temperature=0), b"The ")
        with self.assertRaisesRegex(ValueError, "0x7e"):
            c.generate(prime=b"~", length=5)
        with self.assertRaises(ValueError):
            c.generate(length=5, temperature=-1)
        with self.assertRaises(ValueError):
            c.generate(length=-1)
        with self.assertRaises(ValueError):
            c.generate(length=1, threads=-1)

    def test_evaluate_matches_eval(self):
        c = lstm.CharModel.load(self.model)
        text = corpus(3000, seed=9)
        path = os.path.join(self.d, "test.txt")
        with open(path, "wb") as f:
            f.write(text)
        cli = json.loads(run_cli("eval", "--model", self.model, "--data", path, "--json").decode().splitlines()[-1])
        ours = c.evaluate(text)
        self.assertEqual(ours["chars"], cli["chars"])
        self.assertAlmostEqual(ours["loss"], cli["loss"], places=7)
        self.assertAlmostEqual(ours["bpc"], cli["bpc"], places=7)
        with self.assertRaisesRegex(ValueError, "vocabulary"):
            c.evaluate(b"zz~~zz")

    def train_both(self, tag, cli_args, **kw):
        """lstm train CLI_ARGS in DIR/TAG-a and lstm.train(**kw) in DIR/TAG-b, relative paths in a
        fresh directory each (so the checkpoint metadata matches too); asserts the model and the
        checkpoint are the same bytes.  Returns (dir a, dir b, lstm.train's result)."""
        a, b = os.path.join(self.d, tag + "-a"), os.path.join(self.d, tag + "-b")
        for p in (a, b):
            os.makedirs(p)
            shutil.copy(self.data, os.path.join(p, "data.txt"))
        subprocess.run([lstm_bin(), "train", "--data", "data.txt", "--out", "m.safetensors", *cli_args, *OPTS],
                       cwd=a, check=True, capture_output=True)
        cwd = os.getcwd()
        os.chdir(b)
        try:
            r = lstm.train(data="data.txt", out="m.safetensors", **kw, **KW)
        finally:
            os.chdir(cwd)
        for f in ("m.safetensors", "m.safetensors.ckpt"):
            with open(os.path.join(a, f), "rb") as fa, open(os.path.join(b, f), "rb") as fb:
                self.assertTrue(fa.read() == fb.read(), f + " differs from the CLI's")
        return a, b, r

    def test_train_same_bytes_as_cli(self):
        seen = []
        a, b, r = self.train_both("lstm", ["--steps", "25", "--log", "log.jsonl", "--dropout", "0.1"], steps=25,
                                  log="log.jsonl", dropout=0.1, callback=seen.append)
        la = [json.loads(x) for x in open(os.path.join(a, "log.jsonl"))]
        lb = [json.loads(x) for x in open(os.path.join(b, "log.jsonl"))]
        strip = lambda recs: [{k: v for k, v in x.items() if k not in ("time", "tokens_per_s")} for x in recs]
        self.assertEqual(strip(la), strip(lb))
        self.assertEqual(strip(json.loads(_log_line(x)) for x in seen), strip(lb))
        self.assertEqual((r["steps"], r["step"]), (25, 25))
        self.assertEqual(float("%.9g" % r["val_loss"]), lb[-1]["val_loss"])
        self.assertIsInstance(r["model"], lstm.CharModel)

    def test_train_gru_same_bytes_as_cli(self):
        """cell="gru" is lstm train's --cell gru."""
        _, b, _ = self.train_both("gru", ["--cell", "gru", "--steps", "15"], steps=15, cell="gru")
        self.assertIsInstance(lstm.load(os.path.join(b, "m.safetensors"), prefix="gru."), lstm.GRU)

    def test_cell_of_resumed_and_init_models(self):
        """A cell given must be the file's (as --cell), and an init file's cell is the run's: the
        checkpoints name it, so the CLI resumes them."""
        d = os.path.join(self.d, "cells")
        os.makedirs(d)
        with self.assertRaisesRegex(ValueError, "cell gru conflicts with .*cli.safetensors.ckpt, which holds an LSTM model"):
            lstm.train(resume=self.model + ".ckpt", data=self.data, out=d + "/x.safetensors", steps=40, cell="gru")
        with self.assertRaisesRegex(ValueError, "hidden 32 conflicts with .*cli.safetensors, which has 24"):
            lstm.train(init=self.model, data=self.data, out=d + "/x.safetensors", steps=5, **dict(KW, hidden=32))
        run_cli("train", "--data", self.data, "--out", d + "/g.safetensors", "--steps", "5", "--cell", "gru", *OPTS)
        lstm.train(init=d + "/g.safetensors", data=self.data, out=d + "/g2.safetensors", steps=5, **KW)
        run_cli("train", "--resume", d + "/g2.safetensors.ckpt", "--data", self.data, "--steps", "8")
        self.assertIsInstance(lstm.load(d + "/g2.safetensors", prefix="gru."), lstm.GRU)

    def test_resume_cli_checkpoint(self):
        a, b = os.path.join(self.d, "ra"), os.path.join(self.d, "rb")
        os.makedirs(a)
        os.makedirs(b)
        run_cli("train", "--data", self.data, "--out", a + "/m.safetensors", "--steps", "20", *OPTS)
        shutil.copy(a + "/m.safetensors.ckpt", b + "/m.safetensors.ckpt")
        run_cli("train", "--resume", a + "/m.safetensors.ckpt", "--data", self.data, "--out", a + "/m2.safetensors",
                "--steps", "35")
        r = lstm.train(resume=b + "/m.safetensors.ckpt", data=self.data, out=b + "/m2.safetensors", steps=35)
        self.assertEqual(r["steps"], 15)
        with open(a + "/m2.safetensors", "rb") as fa, open(b + "/m2.safetensors", "rb") as fb:
            self.assertTrue(fa.read() == fb.read(), "resumed model differs from the CLI's")
        with self.assertRaisesRegex(ValueError, "other data"):
            lstm.train(resume=b + "/m.safetensors.ckpt", data=b"x" * 5000, out=b + "/m3.safetensors", steps=40)
        # the validation fraction fixes the training streams and the validation set, as batch and bptt do
        with self.assertRaisesRegex(ValueError, "val-fraction 0.5 conflicts with .*m.safetensors.ckpt, which was trained with val-fraction 0.1"):
            lstm.train(resume=b + "/m.safetensors.ckpt", data=self.data, out=b + "/m3.safetensors", steps=40,
                       val_fraction=0.5)

    def test_data_lists_and_directories_as_cli(self):
        """data="a.txt,dir" reads what `lstm train --data a.txt,dir` reads (the files in order, a
        directory's regular files by name, dot-names, links and subdirectories skipped): the same
        model and checkpoint bytes, and each side resumes the other's checkpoint (it raised
        FileNotFoundError on the list, IsADirectoryError on a directory)."""
        text = corpus()
        for tag in ("la", "lb"):
            d = os.path.join(self.d, tag)
            os.makedirs(os.path.join(d, "dir", "sub"))
            with open(os.path.join(d, "a.txt"), "wb") as f:
                f.write(text[:1500])
            for name, part in (("z.txt", text[1500:2500]), ("b.txt", text[2500:]), (".hidden", b"~~~~"),
                               (os.path.join("sub", "c.txt"), b"^^^^")):
                with open(os.path.join(d, "dir", name), "wb") as f:
                    f.write(part)
            os.symlink("b.txt", os.path.join(d, "dir", "link.txt"))
        a, b = os.path.join(self.d, "la"), os.path.join(self.d, "lb")
        subprocess.run([lstm_bin(), "train", "--data", "a.txt,dir", "--out", "m.safetensors", "--steps", "12", *OPTS],
                       cwd=a, check=True, capture_output=True)
        cwd = os.getcwd()
        os.chdir(b)
        try:
            lstm.train(data="a.txt,dir", out="m.safetensors", steps=12, **KW)
            r = lstm.train(resume=os.path.join(a, "m.safetensors.ckpt"), data="a.txt,dir", out="m2.safetensors",
                           steps=16)
        finally:
            os.chdir(cwd)
        for f in ("m.safetensors", "m.safetensors.ckpt"):
            with open(os.path.join(a, f), "rb") as fa, open(os.path.join(b, f), "rb") as fb:
                self.assertTrue(fa.read() == fb.read(), f + " differs from the CLI's")
        self.assertEqual(r["steps"], 4)
        from lstm._charlm import _read_corpus
        self.assertEqual(_read_corpus(os.path.join(a, "a.txt") + "," + os.path.join(a, "dir")),
                         text[:1500] + text[2500:] + text[1500:2500])
        with self.assertRaisesRegex(ValueError, "is a device"):
            _read_corpus("/dev/zero")

    def test_train_callback_stop_and_errors(self):
        out = os.path.join(self.d, "cb.safetensors")
        r = lstm.train(data=corpus(), out=out, steps=1000, callback=lambda rec: np.bool_(rec["step"] >= 5), **KW)
        self.assertEqual(r["step"], 5)
        self.assertIsNotNone(r["val_loss"])
        self.assertEqual(lstm.CharModel.load(out).vocab, r["model"].vocab)
        for bad in [dict(optimizer="adagrad"), dict(lr=-1), dict(batch=0), dict(steps=3, epochs=1),
                    dict(schedule="cosine", time=1), dict(nonsense=1), dict(batch=4000),
                    dict(val_fraction=1e-9)]:  # a validation part of 0 bytes, not "no validation"
            with self.subTest(**bad):
                with self.assertRaises((ValueError, TypeError)):
                    lstm.train(data=corpus(), out=out, **dict(KW, steps=2, **bad) if "steps" not in bad
                               and "epochs" not in bad and "time" not in bad else dict(KW, **bad))
        for th in (None, 0):  # the documented default (the cores, at most 8), and 0 meaning it as in lstm train
            with self.subTest(threads=th):
                r = lstm.train(data=corpus(), out=out, **dict(KW, steps=2, threads=th))
                self.assertEqual(r["threads"], min(lstm._lstm.cores_usable(), 8))
        self.assertEqual(lstm.train(data=corpus(), out=out, **dict(KW, steps=2, threads=1))["threads"], 1)
        for th in (2.5, 0.5):  # not a thread count: a ValueError as for the other integer options
            with self.subTest(threads=th):  # (2.5 was a TypeError from the extension, 0.5 trained)
                with self.assertRaisesRegex(ValueError, "threads"):
                    lstm.train(data=corpus(), out=out, **dict(KW, steps=2, threads=th))
        with self.assertRaises(OSError):
            lstm.train(data=os.path.join(self.d, "absent.txt"), out=out, steps=2)
        with self.assertRaisesRegex(ValueError, "non-finite|stopping"):
            lstm.train(data=corpus(), out=out, steps=50, **dict(KW, lr=1e38, clip=0, optimizer="sgd", momentum=0))

    def test_plot(self):
        png = os.path.join(self.d, "loss.png")
        r = subprocess.run([sys.executable, "-m", "lstm.plot", os.path.join(self.d, "cli.jsonl"), "-o", png],
                           capture_output=True, text=True, env=sub_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(png, "rb") as f:
            head = f.read()
        self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(len(head), 10000)
        bad = os.path.join(self.d, "bad.jsonl")
        with open(bad, "w") as f:
            f.write('{"step": 1, "loss": 2}\nnot json\n')
        r = subprocess.run([sys.executable, "-m", "lstm.plot", bad, "-o", png], capture_output=True, text=True, env=sub_env())
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.jsonl:2", r.stderr)
        for line in ("[1, 2]", '{"step": 3}', '"text"'):  # JSON, but not a record (it gave a traceback)
            with open(bad, "w") as f:
                f.write('{"step": 1, "loss": 2}\n' + line + "\n")
            r = subprocess.run([sys.executable, "-m", "lstm.plot", bad, "-o", png], capture_output=True, text=True,
                               env=sub_env())
            self.assertEqual((r.returncode, "Traceback" in r.stderr), (1, False), r.stderr)
            self.assertIn("bad.jsonl:2: not a training record", r.stderr)


# an overfitting run: its best validation loss (step 110 of 300) is not its last
KB = dict(KW, lr=0.05, val_fraction=0.3)


class KeepBest(unittest.TestCase):
    """keep="best" as `lstm train --keep best`: out holds the weights of the best validation
    loss, which a resumed run must find in its out; the sample and the returned model are the
    kept ones."""

    def setUp(self):
        self.tmp = TempDir()
        self.d = self.tmp.__enter__()
        self.data = corpus(1000)

    def tearDown(self):
        self.tmp.__exit__(None, None, None)

    def path(self, name):
        return os.path.join(self.d, name)

    def test_needs_validation(self):
        """keep="best" and patience compare validation losses: without validation data, ValueError
        (keep="best" trained and wrote no out; patience was ignored), nothing written."""
        for o in (dict(keep="best"), dict(patience=2)):
            with self.subTest(**o):
                with self.assertRaisesRegex(ValueError, "needs validation data"):
                    lstm.train(data=self.data, out=self.path("nv.st"), steps=30, **dict(KB, val_fraction=0, **o))
                self.assertEqual(os.listdir(self.d), [])

    def test_resume_copy_with_new_out(self):
        """A copy of the checkpoint resumed with a new out that does not exist: the best weights
        so far are in the first run's out, and an evaluation that did not beat the checkpoint's
        best loss wrote nothing (lstm.train returned out=NEW, a file that did not exist)."""
        lstm.train(data=self.data, out=self.path("r.st"), steps=200, keep="best", **KB)
        shutil.copy(self.path("r.st.ckpt"), self.path("copy.ckpt"))
        with self.assertRaisesRegex(OSError, "keep best: .*rc.st does not exist"):
            lstm.train(data=self.data, resume=self.path("copy.ckpt"), out=self.path("rc.st"), steps=300)
        self.assertFalse(os.path.exists(self.path("rc.st")))
        self.assertFalse(os.path.exists(self.path("rc.st.ckpt")))
        # its own checkpoint (out taken from it) resumes
        r = lstm.train(data=self.data, resume=self.path("r.st.ckpt"), steps=300)
        self.assertEqual((r["step"], r["out"]), (300, self.path("r.st")))

    def test_resume_keep_last_run_with_keep_best(self):
        """A run that kept its last weights resumed with keep="best": its out holds those last
        weights, which an evaluation that did not beat its best loss left there as 'the best'."""
        lstm.train(data=self.data, out=self.path("l.st"), steps=200, **KB)
        with open(self.path("l.st"), "rb") as f:
            before = f.read()
        with self.assertRaisesRegex(ValueError, "keep best conflicts with .*l.st.ckpt, whose run kept its last weights"):
            lstm.train(data=self.data, resume=self.path("l.st.ckpt"), keep="best", steps=300)
        with open(self.path("l.st"), "rb") as f:
            self.assertTrue(f.read() == before, "the --keep last run's out was changed")

    def test_sample_and_model_are_the_kept_ones(self):
        """sample= draws from the model in out (the best), not from the last weights, as
        `lstm train --keep best --sample N`; the returned model is that one too."""
        out = self.path("ks.st")
        r = lstm.train(data=self.data, out=out, steps=300, keep="best", sample=60, **KB)
        kept = lstm.CharModel.load(out)
        last = lstm.CharModel.load(out + ".ckpt")
        self.assertFalse(all(np.array_equal(a, b) for a, b in zip(kept.state_dict().values(),
                                                                  last.state_dict().values())),
                         "the best step is the last: the test shows nothing")
        self.assertEqual(r["sample"], kept.generate(length=60, temperature=0.8, seed=KB["seed"])[1:])
        for (n, a), b in zip(r["model"].state_dict().items(), kept.state_dict().values()):
            self.assertTrue(np.array_equal(a, b), f"the returned model's {n} is not the kept one's")
        self.assertLess(r["best_val_loss"], r["val_loss"])
        # keep="last": out holds the last weights, the sample is theirs (sample= raised TypeError:
        # the extension's generate had gained a threads argument)
        # keep="best" with no counted evaluation (every 100 steps, 5 taken): out is not written, so
        # there is no model and no sample (it returned the last weights and their sample)
        rn = lstm.train(data=self.data, out=self.path("kn.st"), steps=5, keep="best", sample=20,
                        **dict(KB, eval_every=100))
        self.assertFalse(os.path.exists(self.path("kn.st")))
        self.assertEqual((rn["model"], rn.get("sample"), rn["best_val_loss"]), (None, None, None))
        rl = lstm.train(data=self.data, out=self.path("kl.st"), steps=20, sample=30, **KB)
        self.assertEqual(rl["sample"], lstm.CharModel.load(self.path("kl.st")).generate(
            length=30, temperature=0.8, seed=KB["seed"])[1:])
        self.assertEqual(rl["best_val_loss"], rl["val_loss"])
        if lstm_bin() is not None:  # the CLI's sample: the same bytes
            with open(self.path("data.txt"), "wb") as f:
                f.write(self.data)
            cli = run_cli("train", "--data", self.path("data.txt"), "--out", self.path("cli.st"), "--steps", "300",
                          "--keep", "best", "--sample", "60", *OPTS, "--lr", "0.05", "--val-fraction", "0.3")
            self.assertEqual(cli, r["sample"] + b"\n")

if __name__ == "__main__":
    unittest.main()
