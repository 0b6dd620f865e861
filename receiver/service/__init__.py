"""Long-lived background work: workers, the outbox loop, the watchkeeper, their supervisor."""
