"""The model sizes pedal-train offers, as (architecture, config) pairs of the pedal's registry.

WaveNet: Neural Amp Modeler's A1 presets (nano, feather, lite, standard) and custom sizes.
TCN: a residual temporal convolutional net (kernel 13, dilations growing by 10, as in
Steinmetz & Reiss's micro-TCN); it is a one-array, ungated WaveNet layout, so the pedal plays
it with the WaveNet kernels. CNN: cnn-distortion's kernel-2 dilated stack. LSTM / GRU: the
RTNeural / GuitarML layout (one recurrent layer, a dense output, the input added back).
Knobs enter WaveNet and TCN models by FiLM, recurrent models as extra inputs.
"""
from pedal.errors import PedalError

LITE_DILATIONS = ([1, 2, 4, 8, 16, 32, 64], [128, 256, 512, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
STANDARD_DILATIONS = ([2 ** i for i in range(10)],) * 2
WAVENET_SIZES = {  # name: (channels of the first array, dilations of both arrays)
    "nano": (4, LITE_DILATIONS),
    "feather": (8, LITE_DILATIONS),
    "lite": (12, LITE_DILATIONS),
    "standard": (16, STANDARD_DILATIONS),
}
RECURRENT_CELLS = {"lstm": "LSTM", "gru": "GRU"}
NAMES = tuple(WAVENET_SIZES) + ("wavenet", "tcn", "cnn", "lstm", "gru")


def wavenet(channels, dilations, kernel_size=3, knobs=0, gated=False):
    """A NAM A1-style WaveNet: two layer arrays, the second half as wide, tanh layers."""
    def layers(dils):
        return [{"kernel_size": kernel_size, "dilation": d, "activation": "Tanh",
                 "gating": "gated" if gated else "none"} for d in dils]
    half = max(1, channels // 2)
    config = {"layer_arrays": [
        {"input_size": 1, "condition_size": 1, "channels": channels, "head_size": half,
         "head_bias": False, "layers": layers(dilations[0])},
        {"input_size": channels, "condition_size": 1, "channels": half, "head_size": 1,
         "head_bias": True, "layers": layers(dilations[1])}]}
    if knobs:
        config["knob_inputs"] = knobs
    return "WaveNet", config


def tcn(channels=16, blocks=4, kernel_size=13, growth=10, knobs=0):
    dilations = [growth ** i for i in range(blocks)]
    config = {"layer_arrays": [
        {"input_size": 1, "condition_size": 1, "channels": channels, "head_size": 1,
         "head_bias": True,
         "layers": [{"kernel_size": kernel_size, "dilation": d, "activation": "LeakyReLU",
                     "alpha": 0.2, "gating": "none"} for d in dilations]}]}
    if knobs:
        config["knob_inputs"] = knobs
    return "WaveNet", config


def cnn(channels=16, layers=10):
    """cnn-distortion: kernel-2 convolutions with dilations 1..2^(layers-1), then a 1x1 ReLU
    layer and a linear 1x1 out."""
    convs = [{"channels": channels, "kernel_size": 2, "dilation": 2 ** i,
              "activation": "Tanh"} for i in range(layers)]
    convs += [{"channels": channels, "kernel_size": 1, "dilation": 1, "activation": "ReLU"},
              {"channels": 1, "kernel_size": 1, "dilation": 1, "activation": "Identity"}]
    return "CNN", {"layers": convs}


def recurrent(cell, hidden=16, knobs=0):
    return "Recurrent", {"cell": cell, "input_size": 1 + knobs, "hidden_sizes": [hidden],
                         "dense": [{"size": 1, "activation": "Identity"}], "skip": 1}


def make(name, knobs=0, channels=None, hidden=None, kernel_size=None):
    """(architecture, config) for a preset name with optional size overrides."""
    if name in WAVENET_SIZES:
        ch, dils = WAVENET_SIZES[name]
        return wavenet(channels or ch, dils, kernel_size or 3, knobs)
    if name == "wavenet":
        return wavenet(channels or 8, LITE_DILATIONS, kernel_size or 3, knobs)
    if name == "tcn":
        return tcn(channels or 16, kernel_size=kernel_size or 13, knobs=knobs)
    if name == "cnn":
        if knobs:
            raise PedalError("--arch", "cnn takes no knobs; use a WaveNet size or tcn (FiLM) "
                                       "or lstm/gru (knob inputs) for a conditioned model")
        return cnn(channels or 16)
    if name in RECURRENT_CELLS:
        h = hidden or 16
        if not 4 <= h <= 64:
            raise PedalError("--hidden", f"{h}: use 4..64 units")
        return recurrent(RECURRENT_CELLS[name], h, knobs)
    raise PedalError("--arch", f"{name!r} is not one of {', '.join(NAMES)}")
