#!/usr/bin/env python
"""Train a model from a checkout: `python tools/train.py se_mobilenet --digits --qat --output-dir runs/digits`.

The same as `keras-se train ...` (keras_se.training.cli).
"""

import sys

from keras_se.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
