"""Bot engine: the BASIC dialect interpreter and the bot package loader."""
