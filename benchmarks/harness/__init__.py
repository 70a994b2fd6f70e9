"""Shared helpers for the Conveyor comparison benchmark."""
