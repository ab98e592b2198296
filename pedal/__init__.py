"""Neural guitar pedal: the runtime that plays model files on a Raspberry Pi.

Nothing under pedal/ (the runtime and the kernels) imports torch; the desktop tools that do
live in pedal.tools.
"""
__version__ = "0.1.0"
