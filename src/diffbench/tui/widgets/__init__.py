"""Widgets of the diffbench dashboard."""
