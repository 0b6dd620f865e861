"""HTTP API, OpenAPI description and the dashboard."""
