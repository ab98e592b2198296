"""What makes the chain a pedal in a box.

    app       the composition root: chain, loader, audio loop, controls, systemd
    pedal     the Pedal facade every control talks to
    control   the control socket (`pedal ctl`, `pedal tune`, `pedal-push`)
    presets   presets and the last state, written atomically in the state directory
    config    the TOML config file
    gpio      footswitches, encoders, pots and the status LED
    sdnotify  READY and WATCHDOG for systemd
    tune      the curses UI over the control socket
"""
