"""Builds the lstm package: the C library (../src, ../include) compiled into
the extension lstm._lstm together with csrc/lstm_module.c.

The library's sources are found, in this order, in
  $LSTM_SOURCE_DIR (a checkout's root: it holds include/lstm.h and src/),
  the directory above this file (python/ inside the repository; pip builds
  local directories in place),
  _vendor/ beside this file (made by `python3 setup.py vendor`, for a copy of
  python/ taken out of the repository).
Offline, no build isolation needed: only setuptools and a C compiler."""
import glob
import os
import shutil
import sys

from setuptools import Command, Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def source_root():
    cands = [os.environ.get("LSTM_SOURCE_DIR"), os.path.dirname(HERE), os.path.join(HERE, "_vendor")]
    for c in cands:
        if c and os.path.isfile(os.path.join(c, "include", "lstm.h")) and os.path.isdir(os.path.join(c, "src")):
            return os.path.abspath(c)
    sys.exit("lstm: cannot find the C library's sources (include/lstm.h, src/) in $LSTM_SOURCE_DIR, "
             + os.path.dirname(HERE) + " or " + os.path.join(HERE, "_vendor")
             + "; build from inside the repository, set LSTM_SOURCE_DIR, or run `python3 setup.py vendor` first")


class Vendor(Command):
    """Copies include/ and src/ into python/_vendor so python/ builds on its own."""
    description = "copy the C library's sources into _vendor/"
    user_options = []

    def initialize_options(self):
        pass

    def finalize_options(self):
        pass

    def run(self):
        root = source_root()
        dst = os.path.join(HERE, "_vendor")
        if os.path.abspath(root) == os.path.abspath(dst):
            return
        shutil.rmtree(dst, ignore_errors=True)
        for d in ("include", "src"):
            shutil.copytree(os.path.join(root, d), os.path.join(dst, d))
        print("copied", root, "include/ and src/ to", dst)


class BuildExt(build_ext):
    """build_ext compiling the library's files in parallel (they are independent)."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1


def extension():
    root = source_root()
    lib = sorted(glob.glob(os.path.join(root, "src", "*.c")) + glob.glob(os.path.join(root, "src", "*", "*.c")))
    # setuptools wants sources relative to setup.py when they are inside it; absolute paths work otherwise
    srcs = [os.path.relpath(p, HERE) if p.startswith(HERE + os.sep) else p for p in lib]
    return Extension(
        "lstm._lstm",
        sources=["csrc/lstm_module.c"] + srcs,
        include_dirs=[os.path.join(root, "include"), os.path.join(root, "src")],
        define_macros=[("_GNU_SOURCE", "1")],
        extra_compile_args=["-std=c11", "-O2", "-pthread", "-Wno-missing-field-initializers"],
        extra_link_args=["-pthread"],
        libraries=["m"],
    )


# `setup.py vendor` and `clean` need no compiler and must work before the sources are copied
needs_ext = not (len(sys.argv) > 1 and sys.argv[1] in ("vendor", "clean", "--help", "--version"))

setup(
    name="lstm",
    version="0.1.0",
    description="LSTM networks in C with torch.nn.LSTM's semantics, from Python",
    packages=["lstm"],
    package_dir={"lstm": "lstm"},
    ext_modules=[extension()] if needs_ext else [],
    cmdclass={"build_ext": BuildExt, "vendor": Vendor},
    python_requires=">=3.9",
    install_requires=[],  # numpy is needed at run time; Debian: python3-numpy (not checked here: offline installs)
    zip_safe=False,
)
