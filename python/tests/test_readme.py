"""The README's "From Python" example runs and checks us against torch.nn.LSTM;
the package's documented names exist."""
import os
import re
import subprocess
import sys
import unittest

from _util import REPO, sub_env, torch


def readme_example():
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    sec = text.split("## From Python", 1)
    if len(sec) < 2:
        raise AssertionError("README.md has no '## From Python' section")
    m = re.search(r"```python\n(.*?)```", sec[1].split("\n## ", 1)[0], re.S)
    if not m:
        raise AssertionError("README.md's 'From Python' section has no ```python example")
    return m.group(1)


class Readme(unittest.TestCase):
    @unittest.skipIf(torch is None, "the example compares with torch (python3-torch)")
    def test_example_runs(self):
        code = readme_example()
        self.assertIn("torch.nn.LSTM", code)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", env=sub_env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        print("  README example printed: " + " | ".join(r.stdout.strip().splitlines()))


if __name__ == "__main__":
    unittest.main()
