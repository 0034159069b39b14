"""Serving: the KServe predictor, its micro-batcher and limits, a V1/V2 client, and deployment (local + cluster).

Import the submodules directly (`unipic.serving.predictor`, `.client`, `.deploy`): kserve is heavy and only the
server side needs it.
"""
