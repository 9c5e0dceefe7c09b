"""``python -m runtime.denoise``: the command line of runtime/cli.py.

Import ``runtime.cli`` rather than this module: importing ``runtime.denoise`` would bind the
package attribute of that name to this module instead of the function.
"""
import sys

from runtime.cli import main

if __name__ == "__main__":
    sys.exit(main())
