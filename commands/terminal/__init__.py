"""The user's terminal: the line editor (a pure state machine) and the screen
that keeps the input line intact while output arrives."""

from __future__ import annotations
