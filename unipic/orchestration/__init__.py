"""Running and compiling KFP pipelines: `kfp.local` at the local scale, IR YAML for a cluster.

This module takes pipeline functions as arguments; it never imports `pipelines/` or `components/`.
"""
