"""Builds the lstm package: the C library (../src, ../include) compiled into
the extension lstm._lstm together with csrc/lstm_module.c.

The library's sources are found, in this order, in
  $LSTM_SOURCE_DIR (a checkout's root: it holds include/lstm.h and src/),
  the directory above this file (python/ inside the repository; pip builds
  local directories in place),
  _vendor/ beside this file (made by `python3 setup.py vendor`, for a copy of
  python/ taken out of the repository; `python3 setup.py vendor sdist` makes an
  sdist that carries it: MANIFEST.in).
Offline, no build isolation needed: only setuptools and a C compiler."""
import glob
import os
import shutil
import sys

from setuptools import Command, Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)  # paths below are relative to python/, wherever setup.py is run from


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


class LinkUser(Command):
    """For a Python without pip (Debian's /usr/bin/python3): builds the extension
    in place and puts a lstm.pth naming this directory into the user's
    site-packages, so `import lstm` works from any directory.  --remove undoes it."""
    description = "build in place and link this directory into the user's site-packages"
    user_options = [("remove", None, "remove the link instead")]
    boolean_options = ["remove"]

    def initialize_options(self):
        self.remove = 0

    def finalize_options(self):
        pass

    def run(self):
        import site
        pth = os.path.join(site.getusersitepackages(), "lstm.pth")
        if self.remove:
            if os.path.exists(pth):
                os.remove(pth)
                print("removed", pth)
            return
        if not site.ENABLE_USER_SITE:
            sys.exit("lstm: this Python does not read the user's site-packages (a virtual environment?); "
                     "use pip install there instead")
        cmd = self.reinitialize_command("build_ext", inplace=1)
        self.run_command("build_ext")
        del cmd
        os.makedirs(os.path.dirname(pth), exist_ok=True)
        with open(pth, "w") as f:
            f.write(HERE + "\n")
        print("wrote", pth, "->", HERE)


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
        depends=sorted(glob.glob(os.path.join(root, "include", "*.h")) + glob.glob(os.path.join(root, "src", "*.h"))
                       + glob.glob(os.path.join(root, "src", "*", "*.h"))),
        include_dirs=[os.path.join(root, "include"), os.path.join(root, "src")],
        define_macros=[("_GNU_SOURCE", "1")],
        extra_compile_args=["-std=c11", "-O2", "-pthread", "-fvisibility=hidden"],  # exports PyInit__lstm only
        extra_link_args=["-pthread"],
        libraries=["m"],
    )


# `setup.py vendor` and `clean` need no compiler and must work before the sources are copied;
# any other command among them (`vendor sdist`) needs the extension listed
_commands = [a for a in sys.argv[1:] if not a.startswith("-")]
needs_ext = not (set(sys.argv[1:]) & {"--help", "--version"} and not _commands
                 or _commands and set(_commands) <= {"vendor", "clean"}
                 or sys.argv[1:] == ["link_user", "--remove"])

setup(
    name="lstm",
    version="0.1.0",
    description="LSTM networks in C with torch.nn.LSTM's semantics, from Python",
    packages=["lstm"],
    package_dir={"lstm": "lstm"},
    ext_modules=[extension()] if needs_ext else [],
    cmdclass={"build_ext": BuildExt, "vendor": Vendor, "link_user": LinkUser},
    python_requires=">=3.9",
    install_requires=[],  # numpy is needed at run time; Debian: python3-numpy (not checked here: offline installs)
    zip_safe=False,
)
