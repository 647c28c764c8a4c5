"""Many runs of the model: seeds, specifications, a resumable store, executors."""
