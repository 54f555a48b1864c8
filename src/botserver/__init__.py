"""botserver: hosts General Bots conversational bots behind the General Bots API."""

__version__ = "0.1.0"
