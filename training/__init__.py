"""Training of the project's own models (build machine only: TensorFlow/Keras lives here, never on the device).

    .venv-train/bin/python -m training.emotion      # FER-2013 train split -> .cache/training/emotion/

Each command has a fixed seed, selects and early-stops on a split of the training data only, checkpoints
every epoch under ``.cache/training/<model>/`` and resumes from the last one when run again. The int8
conversion and its agreement checks are in ``converters/`` (``python -m converters.emotion_trained``).
"""
