"""What every domain may use: coded errors, state-machine tables, roles, the SQL base and
background-task helpers.

Owns no business rule and imports nothing of ``checkout``, ``live``, ``signaling`` or
``web`` (``tests/test_layers.py``).
"""
