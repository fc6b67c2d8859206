"""``python -m gunicorn``: the same entry point as the console script."""

from _gunicorn_launch import main

main()
