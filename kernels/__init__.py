"""Cython kernels: streaming processors that run without the GIL and allocate only in reset().

conv       dilated causal convolution stacks (the CNN model)
wavenet    Neural Amp Modeler A1-family WaveNet
recurrent  LSTM / GRU stacks with a dense head (RTNeural, GuitarML, NAM LSTM)
biquad     second-order section cascades (tone stack, DC blocker) and RBJ coefficients
fftconv    zero-latency partitioned convolution for cabinet impulse responses
dynamics   gain ramps, crossfades, the noise gate and level meters of the chain
"""
