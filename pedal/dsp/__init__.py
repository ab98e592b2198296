"""The signal chain around the model, as the pedal plays it.

    params   the parameters (name, range, default) every control is checked against
    chain    input gain -> gate -> MODEL -> EQ -> cabinet IR -> DC blocker -> level,
             bypass; a processor whose model and IR slots crossfade on a swap
    loader   the thread that loads, prewarms and loudness-matches models and IRs
    render   a file through a model or the whole chain, offline (`pedal render`)
"""
