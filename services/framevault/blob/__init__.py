"""The blob service: content-addressed bytes on S3 (see README.md in this folder)."""
