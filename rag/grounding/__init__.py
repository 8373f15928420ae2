"""Grounded answers: which sentences answer, support checks, citations, answer styles and abstention."""
