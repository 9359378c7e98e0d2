"""Helpers shared by the pi-cluster reference DAGs (imported at parse time: NO database access here)."""
