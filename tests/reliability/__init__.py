"""Reliability and security: outages, crashes, concurrency, hostile input, headers, privacy."""
