"""Build the pedal package: the Cython kernels, the pedal runtime and the desktop tools.

    pip install .[device]   on the Raspberry Pi (no torch)
    pip install .[train]    on the desktop (torch, NAM reference)
"""
import glob
import os
import platform

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def kernel_extensions():
    """One extension module per kernels/*.pyx, importable as pedal.kernels.<name>."""
    # These let GCC vectorize the clamps and conversions of the activation loops (they are
    # 3-6x faster so); the kernels never rely on FP exceptions, signed zeros or NaN tests, and
    # model weights are checked finite on load. No reassociation: results stay exact.
    flags = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fno-signed-zeros",
             "-ffinite-math-only"]
    # The kernels are built where they run (pip on the Pi, or the desktop), so use the
    # machine's vector units; PEDAL_PORTABLE=1 builds for any CPU of the architecture.
    if not os.environ.get("PEDAL_PORTABLE"):
        flags.append({"x86_64": "-march=native", "aarch64": "-mcpu=native"}.get(
            platform.machine(), "-O3"))
    exts = []
    for src in sorted(glob.glob("kernels/*.pyx")):
        name = os.path.splitext(os.path.basename(src))[0]
        exts.append(Extension(
            f"pedal.kernels.{name}", [src],
            include_dirs=[numpy.get_include(), "kernels"],
            extra_compile_args=flags,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        ))
    return cythonize(exts, include_path=["kernels"], language_level=3,
                     compiler_directives={"boundscheck": False, "wraparound": False,
                                          "cdivision": True, "initializedcheck": False})


setup(
    name="pedal",
    version="0.1.0",
    description="Neural guitar pedal for the Raspberry Pi: kernels, runtime and desktop tools",
    python_requires=">=3.9",
    packages=["pedal", "pedal.arch", "pedal.formats", "pedal.kernels", "pedal.tools",
              "pedal.models"],
    package_dir={"pedal": "pedal", "pedal.kernels": "kernels", "pedal.tools": "tools",
                 "pedal.models": "models"},
    package_data={"pedal.models": ["*.pedal", "*.flac", "*.md"]},
    ext_modules=kernel_extensions(),
    install_requires=["numpy>=1.24", "scipy>=1.10", "soundfile>=0.12", "tqdm>=4.60"],
    extras_require={
        # lgpio: gpiozero's pin factory on the Pi 5 (and what it prefers on the Pi 4)
        "device": ["pyalsaaudio>=0.10", "gpiozero>=2.0",
                   "lgpio>=0.2; platform_machine == 'aarch64'"],
        "train": ["torch==2.13.0", "neural-amp-modeler>=0.10", "matplotlib>=3.6",
                  "pedalboard>=0.9"],
        "test": ["pytest>=7", "hypothesis>=6"],
    },
    entry_points={"console_scripts": [
        "pedal=pedal.cli:main",
        "pedal-convert=pedal.tools.convert:main",
        "pedal-push=pedal.tools.push:main",
        "pedal-capture=pedal.tools.capture:main",
        "pedal-train=pedal.tools.train:main",
        "pedal-abx=pedal.tools.abx:main",
    ]},
    zip_safe=False,
)
