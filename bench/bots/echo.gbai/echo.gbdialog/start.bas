REM Greets, then echoes every message until told to stop.
TALK "Hello! Say something."
done = FALSE
WHILE NOT done
  HEAR text
  IF LCASE(text) = "stop" THEN
    TALK "Bye."
    done = TRUE
  ELSE
    ADD SUGGESTION "stop"
    TALK "You said: " & text
  END IF
WEND
