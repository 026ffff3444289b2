"""raynas: Ray-based orchestrator for differentiable NAS."""
