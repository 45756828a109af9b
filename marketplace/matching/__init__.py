"""Ranking: who fits a care request, and in what order."""
