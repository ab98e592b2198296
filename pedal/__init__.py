"""Neural guitar pedal: the runtime that plays model files on a Raspberry Pi.

Nothing under pedal/ (the runtime and the kernels) imports torch; the desktop tools that do
live in pedal.tools.
"""
import os

# The kernels call OpenBLAS from the audio thread: one BLAS thread, or its worker threads
# wake per call and miss deadlines. Must be set before numpy/scipy load their OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
