"""Early warning (预警): space-time clusters and per-grid spikes found in the cases, kept as
warnings the command centre acknowledges and closes."""
