"""Racking new hardware: discovery reports of unknown machines, rules, and enrolment."""
