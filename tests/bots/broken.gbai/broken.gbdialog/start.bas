TALK "fine"
IF x = 1 THEN
  TALK "never closed"
