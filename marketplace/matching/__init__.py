"""Geography, eligibility and ranking."""
