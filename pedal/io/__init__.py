"""Audio in and out.

    alsa        capture and playback PCMs through alsa-lib (pyalsaaudio), what was
                negotiated checked, xruns counted and resynced, a lost device reopened
    codec       device sample formats <-> the pedal's float32 mono periods
    loop        the real-time loop: read a period, run the chain, write it
    realtime    mlockall, SCHED_FIFO, collector off for the audio thread
    stats       per-period compute time, load and xruns
    latency     the round trip measured through a cable (`pedal latency`)
    filedevice  a file-backed ALSA device for machines without a sound card
    audiofile   WAV/FLAC files in and out (float32, atomic writes)
"""
