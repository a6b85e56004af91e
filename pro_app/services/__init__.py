"""Use cases. Services flush; the view, command or job that owns the unit of work commits."""
