"""Entry point for multi-process phase 3 (``accelerate launch`` / ``torchrun``); see mathcode.train.launch."""
import sys

from mathcode.train.launch import main

if __name__ == "__main__":
    sys.exit(main())
