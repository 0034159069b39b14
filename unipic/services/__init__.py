"""Local services for the embedded scale: SeaweedFS as the S3 object store (`unipic services up`)."""

from unipic.services.seaweedfs import SeaweedStatus, down, status, up, weed_binary

__all__ = ["SeaweedStatus", "down", "status", "up", "weed_binary"]
