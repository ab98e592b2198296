"""Neural guitar pedal: the runtime that plays model files on a Raspberry Pi.

A sample's way through the package, folder by folder:

    io/     ALSA capture (alsa, codec) -> the real-time loop (loop, realtime, stats)
    dsp/    the chain: gain, gate, MODEL, EQ, cabinet IR, level, bypass (chain, params,
            loader thread, offline render)
    model/  the model: file format, readers of foreign formats, architectures and their
            Cython kernels (pedal.kernels)
    io/     -> ALSA playback
    box/    what makes it a pedal: the composition root (app), controls (GPIO, control
            socket, presets, config), systemd notification
    cli/    the `pedal` command's verbs, thin wrappers over the above

Nothing under pedal/ imports torch; the desktop tools that do live in pedal.tools.
"""
import os
from importlib import metadata

# The kernels call OpenBLAS from the audio thread: one BLAS thread, or its worker threads
# wake per call and miss deadlines. Must be set before numpy/scipy load their OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:
    __version__ = metadata.version("pedal")
except metadata.PackageNotFoundError:      # a copied tree (the arm64 check), not installed
    __version__ = "0+unknown"
