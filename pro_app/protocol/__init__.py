"""Time points, assessment windows and the reminder plan: pure functions of dates, no Flask."""
