#!/usr/bin/env python
"""Run the keras-se command line from a checkout: `python tools/keras_se_cli.py list`."""

import sys

from keras_se.cli import main

if __name__ == "__main__":
    sys.exit(main())
