"""Models: the Kontext DiT, the image autoencoder slot, text encoders, tokenizers, bootstrap, conversion.

Submodules import diffusers/transformers, so import what you need from them directly, e.g.
`from unipic.models.kontext import SD3KontextTransformer`.
"""
