"""Reading: what a mail says, from its bytes alone.

Parsing, the MIME walk, charsets and encoded words, HTML to text, the new text of a
reply, robot screening, bounce reports and the commands written in a reply. Pure
functions over bytes and text: nothing here decides what happens to a case.

May import: nothing of mailcase's but itself; no database code (no ``store``, no
SQLAlchemy), so any room can read mail without a connection.
"""
