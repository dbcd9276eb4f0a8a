"""The agent HTTP API (JSON), one module per resource."""
