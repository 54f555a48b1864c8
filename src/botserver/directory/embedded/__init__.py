"""The OpenID provider built into botserver, mounted at `/directory`."""
