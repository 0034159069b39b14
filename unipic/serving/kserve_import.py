"""Import kserve without letting it read our command line.

`kserve.model_server` runs `argparse.parse_known_args()` on import, with abbreviations allowed: a `--timeout 60`
meant for pytest or `--model X` meant for us would be taken as its `--timeout-keep-alive`/`--model_name`.
"""

from __future__ import annotations

import sys

_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import kserve  # noqa: F401
    import kserve.errors  # noqa: F401
    from kserve import constants  # noqa: F401
finally:
    sys.argv = _argv

__all__ = ["kserve", "constants"]
