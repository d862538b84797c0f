"""The web gateway: the web app's files and an HTTP JSON API over the metadata and blob services (API.md)."""
