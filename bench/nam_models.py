"""The models the kernel benchmarks play, made by NAM's own Python from fixed seeds (random
weights: speed does not depend on them): NAM's A1 WaveNet presets (nano, feather, lite,
standard) and LSTMs, and a GuitarML JSON GRU, which NAM core does not read. Desktop only
(torch, neural-amp-modeler)."""
import json
import os

RATE = 48000
D10 = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
D7, D13 = D10[:7], [128, 256, 512] + D10
# name: (first array channels, head size, dilations; second array likewise), NAM's A1 presets
A1 = {"a1_standard": ((16, 8, D10), (8, 1, D10)), "a1_lite": ((12, 6, D7), (6, 1, D13)),
      "a1_feather": ((8, 4, D7), (4, 1, D13)), "a1_nano": ((4, 2, D7), (2, 1, D13))}
LSTMS = {"lstm_1x16": (1, 16), "lstm_1x24": (1, 24), "lstm_2x24": (2, 24)}
GRUS = {"gru_1x24": 24}
MODELS = [*A1, *LSTMS, *GRUS]


def make_models(folder, names):
    """Write the named models into folder with fixed seeds; returns name -> path."""
    import torch
    from nam.models import LSTM, WaveNet
    paths = {}
    for name in names:
        torch.manual_seed(MODELS.index(name))
        if name in A1:
            arrays, cin = [], 1
            for k, (ch, head, dil) in enumerate(A1[name]):
                arrays.append({"input_size": cin, "condition_size": 1, "channels": ch,
                               "head": {"out_channels": head, "kernel_size": 1, "bias": k == 1},
                               "kernel_size": 3, "dilations": dil, "activation": "Tanh"})
                cin = ch
            net = WaveNet.init_from_config({"layers_configs": arrays, "head_scale": 0.02,
                                            "sample_rate": float(RATE)})
        elif name in LSTMS:
            layers, hidden = LSTMS[name]
            net = LSTM(hidden_size=hidden, num_layers=layers, sample_rate=float(RATE))
        else:
            paths[name] = os.path.join(folder, name + ".json")
            with open(paths[name], "w") as f:
                json.dump(_guitarml_gru(GRUS[name]), f)
            continue
        net.export(folder, basename=name)
        paths[name] = os.path.join(folder, name + ".nam")
    return paths


def _guitarml_gru(hidden):
    """A GuitarML JSON GRU with torch's random initial weights."""
    from torch import nn
    rec, lin = nn.GRU(1, hidden), nn.Linear(hidden, 1)
    state = {f"rec.{k}": v.tolist() for k, v in rec.state_dict().items()}
    state.update({f"lin.{k}": v.tolist() for k, v in lin.state_dict().items()})
    return {"model_data": {"model": "SimpleRNN", "input_size": 1, "skip": 1, "output_size": 1,
                           "unit_type": "GRU", "num_layers": 1, "hidden_size": hidden,
                           "bias_fl": True}, "state_dict": state}
