"""Pipeline stages: enrich, rank, suppress, route and render, assembled in builder.py."""
