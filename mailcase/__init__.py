"""mailcase: an email-to-case gateway. Mail in, cases out, every reply threaded."""

__version__ = "0.1.0"
