"""The ``loopline`` command line: one module per command group.

``loopline.cli.main`` builds the app; importing it pulls in typer and rich only, so
``loopline --help`` answers at once. Each command imports what it needs (the
client, SQLAlchemy, pandas) when it runs.
"""
