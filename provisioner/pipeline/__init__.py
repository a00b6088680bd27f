"""Driving nodes through the state machine: provision, reprovision, rebuild."""
