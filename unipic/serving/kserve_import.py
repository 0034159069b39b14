"""Import kserve without letting it read our command line.

`kserve.model_server` runs `argparse.parse_known_args()` on import, with abbreviations allowed: a `--timeout 60`
meant for pytest or `--model X` meant for us would be taken as its `--timeout-keep-alive`/`--model_name`.
Import kserve names from here (first), never from kserve directly in modules that can be imported first.
"""

from __future__ import annotations

import sys

_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import kserve
    import kserve.errors
    from kserve import constants
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
finally:
    sys.argv = _argv

__all__ = ["InferOutput", "InferRequest", "InferResponse", "constants", "kserve"]
