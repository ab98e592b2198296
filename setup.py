"""Build the Cython kernels (kernels/*.pyx -> pedal.kernels.*); everything else about the
package is in pyproject.toml."""
import glob
import os
import platform

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The kernels cimport their base class as pedal.kernels._processor; Cython looks for its .pxd
# under an include folder as pedal/kernels/, so the build makes one that points at kernels/.
CYTHON_INCLUDE = os.path.join("build", "cython-include")


def cython_include():
    link = os.path.join(CYTHON_INCLUDE, "pedal", "kernels")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.islink(link):
        os.symlink(os.path.join("..", "..", "..", "kernels"), link)
    return CYTHON_INCLUDE


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
    return cythonize(exts, include_path=["kernels", cython_include()], language_level=3,
                     nthreads=build_jobs(),
                     compiler_directives={"boundscheck": False, "wraparound": False,
                                          "cdivision": True, "initializedcheck": False})


def build_jobs():
    """Compilers to run at once: one per core, as many as the memory holds (GCC takes about
    300 MB on the largest kernel at -O3: a Pi 4 with 1 GB builds them one at a time)."""
    jobs = os.cpu_count() or 1
    try:
        with open("/proc/meminfo") as info:
            kb = next(int(line.split()[1]) for line in info if line.startswith("MemAvailable:"))
        jobs = min(jobs, kb // (400 * 1024))
    except (OSError, StopIteration, ValueError):
        pass
    return max(1, jobs)


class ParallelBuildExt(build_ext):
    """Compiles the kernels in parallel (build_jobs)."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = build_jobs()


setup(ext_modules=kernel_extensions(), cmdclass={"build_ext": ParallelBuildExt})
