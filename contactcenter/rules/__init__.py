"""The callback rules engine: pure functions that decide which work is due (spec:
shared/spec/callback-rules.md). Storage and the scheduler loop live outside this package."""
