"""The Kubernetes source: API reads, facts, subject, report and log excerpts."""
