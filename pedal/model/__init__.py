"""The model: what the pedal plays between the input stage and the tone stack.

    file      the pedal's own .pedal file: Model, Knob, encode/decode, quantization
    formats   load_model(path) for every format the pedal reads (.pedal, NAM .nam,
              RTNeural / AIDA-X / GuitarML JSON), each checked into a Model
    arch      the registry: architecture name -> frozen spec (check) -> kernel (build)
    card      the model card (`pedal info`)
    bench     kernel speed on one thread (`pedal bench`), a slimmable model's fitting size

The kernels themselves are Cython, in pedal.kernels (the top-level kernels/ folder).
"""
