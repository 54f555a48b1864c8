TALK "Staff only."
