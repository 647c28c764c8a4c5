"""What a user reads: files written atomically, provenance, tables and plots."""
