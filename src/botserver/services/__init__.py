"""Business rules. Each service is usable without HTTP."""
