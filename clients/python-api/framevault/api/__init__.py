"""What the SDK and the services share besides the generated code in ``framevault.v1``:
blob digests and URIs, metadata value conversion, and the blob client."""
