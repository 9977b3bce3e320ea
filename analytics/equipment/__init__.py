"""Equipment failure probability, life-cycle cost and manufacturer ranking (seed 002 §3.2)."""
