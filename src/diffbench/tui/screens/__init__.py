"""Screens of the diffbench dashboard (modal dialogs and full-screen views)."""
