"""Trial analyses on plain values: compliance, time to deterioration, means with confidence
intervals. Pure Python, no Flask and no database, so each rule is tested on worked examples."""
