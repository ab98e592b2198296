"""Model files shipped with the pedal, each with a model card (*.md) and the recipe that
rebuilds it (recipes/)."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = "ts9-drive.pedal"
DEMO_CLIP = "demo-clip.flac"


def path(name):
    return os.path.join(HERE, name)


def default_model():
    return path(DEFAULT_MODEL)


def demo_clip():
    return path(DEMO_CLIP)
