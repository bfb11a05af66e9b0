from .inference import load_compact  # noqa: F401 - the trained network of a finished trial
