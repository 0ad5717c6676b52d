"""The text UI (urwid): screens in order, driven by keys or an answers file."""
