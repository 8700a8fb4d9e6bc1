"""The console room: the web console where agents work cases in a browser, served by
``mailcase serve`` on an address of its own (``[console]``).

``signin`` says who is at the browser — a session cookie from a password sign-in, or a
trusted header from a single sign-on proxy — and guards every form against cross-site
requests (CSRF token, Origin); ``render`` turns the ``templates/console/`` pages into
answers with a strict Content-Security-Policy; ``app`` puts the routes together. Pages
change cases only through the case rules (cases.desk), as every door does.
"""
